#!/usr/bin/env python3
"""Drives Debian's headless Chromium (through chromedriver) for fairsend's browser tests.

    browser.py unsubscribe URL   open the unsubscribe page, read it, click confirm, read the result

Prints one JSON object: what a person saw before and after the click.
"""
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--user-data-dir=" + profile):
        options.add_argument(flag)
    # Starting Chromium can time out on a loaded 2-core machine; retry the start only.
    for attempt in range(3):
        try:
            return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        except Exception as error:  # SessionNotCreatedException, WebDriverException
            print("browser start failed (attempt %d): %s" % (attempt + 1, error), file=sys.stderr)
            time.sleep(1)
    raise RuntimeError("Chromium did not start")


def unsubscribe(url):
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(url)
            before = {
                "lang": driver.find_element(By.TAG_NAME, "html").get_attribute("lang"),
                "title": driver.title,
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
                "button": driver.find_element(By.ID, "confirm").text,
            }
            driver.find_element(By.ID, "confirm").click()
            after = {
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
                "erase_button": driver.find_element(By.ID, "erase").text,
                "url": driver.current_url,
            }
            return {"before": before, "after": after}
        finally:
            driver.quit()


if __name__ == "__main__":
    command, url = sys.argv[1], sys.argv[2]
    if command != "unsubscribe":
        sys.exit("unknown command " + command)
    print(json.dumps(unsubscribe(url)))
