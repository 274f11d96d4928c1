#!/usr/bin/env python3
"""Drives Debian's headless Chromium (through chromedriver) for fairsend's browser tests.

    browser.py unsubscribe URL   open the unsubscribe page, read it, click confirm, read the result
    browser.py admin BASE PASSWORD CAMPAIGN STEM [SCREENSHOT_DIR]
                                 log in to /admin, watch CAMPAIGN's counts change, re-classify
                                 the newest bounce, opt out an address, approve STEM's footers
    browser.py report BASE PASSWORD CAMPAIGN [SCREENSHOT]
                                 log in, open /admin/campaigns/CAMPAIGN, read its charts (bars
                                 per colour, title, desc) and tables, run axe-core on the page

    browser.py lifecycle BASE PASSWORD CAMPAIGN
                                 log in, open /admin/campaigns/CAMPAIGN, read its charts, click
                                 Pause, Resume, Cancel unconfirmed, Cancel confirmed; after each
                                 step print a JSON line (what the page says, axe-core's findings)
                                 and wait for a line on stdin (the test checks the database)

    browser.py signup URL EMAIL NAME COMPANY
                                 open a signup form, read it and its notice, fill it in, submit
    browser.py confirm URL       open a signup confirmation link, read it, confirm, read the result

Prints one JSON object: what a person saw before and after the click (lifecycle: one per step).
"""
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By


def gone(element):
    """A wait condition: the element's document has been replaced (the form was answered).
    Chromedriver reports such a node as a stale element or, while the new document is being
    attached, as "Node with given id does not belong to the document"; both mean gone."""
    def predicate(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True
    return predicate


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
            from selenium.webdriver.support.ui import WebDriverWait
            button = driver.find_element(By.ID, "confirm")
            button.click()
            # Read the result page, not the page the form was on.
            WebDriverWait(driver, 10).until(gone(button))
            after = {
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
                "erase_button": driver.find_element(By.ID, "erase").text,
                "url": driver.current_url,
            }
            return {"before": before, "after": after}
        finally:
            driver.quit()


def admin(base, password, campaign, stem, shots):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def submit(button):
        # Wait until the page the form was on is replaced by the response: reading before
        # then would read the old page.
        button.click()
        WebDriverWait(driver, 10).until(gone(button))

    def shot(name):
        if shots:
            driver.save_screenshot("%s/%s.png" % (shots, name))

    def sent_count():
        try:
            return int(driver.find_element(By.CSS_SELECTOR, "#campaign-%s .sent" % campaign).text)
        except Exception:
            return None

    seen = {}
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        driver.set_window_size(1200, 900)
        try:
            driver.get(base + "/admin")
            seen["login_url"] = driver.current_url
            driver.find_element(By.ID, "password").send_keys(password)
            shot("login")
            submit(driver.find_element(By.ID, "login"))
            WebDriverWait(driver, 10).until(lambda d: sent_count() is not None)
            first = sent_count()
            seen["refreshing"] = bool(driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]"))
            shot("campaigns")
            # The page refreshes itself while the campaign runs: wait for the count to move.
            WebDriverWait(driver, 20, poll_frequency=0.3).until(lambda d: (sent_count() or first) > first)
            seen["sent_first"], seen["sent_later"] = first, sent_count()

            driver.get(base + "/admin/bounces")
            row = driver.find_element(By.CSS_SELECTOR, "tbody tr")
            bounce_id = row.get_attribute("id").split("-")[1]
            seen["bounce_before"] = {"class": row.find_element(By.CLASS_NAME, "class").text,
                                     "recipient": row.find_elements(By.TAG_NAME, "td")[1].text}
            Select(driver.find_element(By.ID, "class-" + bounce_id)).select_by_value("soft")
            Select(driver.find_element(By.ID, "reason-" + bounce_id)).select_by_value("mailbox_full")
            shot("bounces")
            submit(driver.find_element(By.ID, "reclassify-" + bounce_id))
            row = driver.find_element(By.ID, "bounce-" + bounce_id)
            seen["bounce_after"] = {"class": row.find_element(By.CLASS_NAME, "class").text,
                                    "reason": row.find_element(By.CLASS_NAME, "reason").text,
                                    "action": row.find_element(By.CLASS_NAME, "action").text}

            driver.get(base + "/admin/optouts")
            driver.find_element(By.ID, "optout-email").send_keys("walkin@firma.example")
            driver.find_element(By.ID, "optout-reason").send_keys("asked at a fair")
            submit(driver.find_element(By.ID, "optout-submit"))
            first_row = driver.find_element(By.CSS_SELECTOR, "tbody tr")
            seen["optout"] = {"email": first_row.find_element(By.CLASS_NAME, "email").text,
                              "source": first_row.find_element(By.CLASS_NAME, "source").text,
                              "status": driver.find_element(By.CSS_SELECTOR, "[role=status]").text}
            shot("optouts")

            driver.get(base + "/admin/review")
            submit(driver.find_element(By.CSS_SELECTOR, "a[href='/admin/review/%s']" % stem))
            seen["variants"] = len(driver.find_elements(By.CLASS_NAME, "footer-variant"))
            seen["approval_before"] = driver.find_element(By.ID, "approval-state").text
            driver.find_element(By.ID, "approver").send_keys("Liisa Lakimies")
            submit(driver.find_element(By.ID, "approve"))
            seen["approval_after"] = driver.find_element(By.ID, "approval-state").text
            shot("review")
            return seen
        finally:
            driver.quit()


def signup(url, email, name, company):
    from selenium.webdriver.support.ui import WebDriverWait
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(url)
            notice = driver.find_element(By.ID, "notice")
            button = driver.find_element(By.ID, "subscribe")
            # DOCUMENT_POSITION_FOLLOWING (4): the button comes after the notice.
            order = driver.execute_script(
                "return arguments[0].compareDocumentPosition(arguments[1]);", notice, button)
            honeypot = driver.find_element(By.ID, "homepage")
            before = {
                "lang": driver.find_element(By.TAG_NAME, "html").get_attribute("lang"),
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "notice": notice.text,
                "notice_before_button": bool(order & 4),
                "honeypot_visible": honeypot.is_displayed(),
                "button": button.text,
            }
            driver.find_element(By.ID, "email").send_keys(email)
            driver.find_element(By.ID, "name").send_keys(name)
            driver.find_element(By.ID, "company").send_keys(company)
            button.click()
            WebDriverWait(driver, 10).until(gone(button))
            after = {
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
            }
            return {"before": before, "after": after}
        finally:
            driver.quit()


def confirm(url):
    from selenium.webdriver.support.ui import WebDriverWait
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(url)
            button = driver.find_element(By.ID, "confirm")
            before = {
                "lang": driver.find_element(By.TAG_NAME, "html").get_attribute("lang"),
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
                "button": button.text,
            }
            button.click()
            WebDriverWait(driver, 10).until(gone(button))
            after = {
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "text": driver.find_element(By.TAG_NAME, "main").text,
            }
            return {"before": before, "after": after}
        finally:
            driver.quit()


def report(base, password, campaign, shot):
    from axe_selenium_python import Axe
    from selenium.webdriver.support.ui import WebDriverWait

    def table(table_id):
        return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
                for row in driver.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table_id)]

    def chart(chart_id):
        svg = driver.find_element(By.ID, chart_id)
        bars = {}
        for rect in svg.find_elements(By.TAG_NAME, "rect"):
            fill = rect.get_attribute("fill")
            bars[fill] = bars.get(fill, 0) + 1
        return {"role": svg.get_attribute("role"),
                "title": svg.find_element(By.TAG_NAME, "title").get_attribute("textContent"),
                "desc": svg.find_element(By.TAG_NAME, "desc").get_attribute("textContent"),
                "width": svg.size["width"], "bars": bars}

    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        driver.set_window_size(1200, 900)
        try:
            driver.get(base + "/admin/campaigns/" + campaign)
            seen = {"login_url": driver.current_url}
            driver.find_element(By.ID, "password").send_keys(password)
            button = driver.find_element(By.ID, "login")
            button.click()
            WebDriverWait(driver, 10).until(gone(button))
            driver.get(base + "/admin/campaigns/" + campaign)
            seen["h1"] = driver.find_element(By.TAG_NAME, "h1").text
            seen["timeline"] = chart("chart-timeline")
            seen["variants"] = chart("chart-variants")
            seen["timeline_table"] = table("timeline-table")
            seen["variants_table"] = table("variants-table")
            seen["results_table"] = table("results")
            seen["warnings"] = [w.text for w in driver.find_elements(By.CSS_SELECTOR, "li.warning")]
            seen["scripts"] = len(driver.find_elements(By.TAG_NAME, "script"))
            if shot:
                height = driver.execute_script("return document.body.scrollHeight")
                driver.set_window_size(1200, height + 100)
                driver.save_screenshot(shot)
                driver.set_window_size(1200, 900)
            axe = Axe(driver)
            axe.inject()
            results = axe.run()
            seen["axe_violations"] = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                                       "nodes": len(v["nodes"])} for v in results["violations"]]
            seen["axe_passes"] = len(results["passes"])
            return seen
        finally:
            driver.quit()


def axe_findings(driver):
    """axe-core over the page as it is now: its violations (id, impact, nodes) and passes."""
    from axe_selenium_python import Axe
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    return {"violations": [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                            "nodes": len(v["nodes"])} for v in results["violations"]],
            "passes": len(results["passes"])}


def lifecycle(base, password, campaign):
    from selenium.webdriver.support.ui import WebDriverWait

    def submit(button):
        button.click()
        WebDriverWait(driver, 10).until(gone(button))

    def page_state():
        svgs = driver.find_elements(By.TAG_NAME, "svg")
        return {"url": driver.current_url,
                "h1": driver.find_element(By.TAG_NAME, "h1").text,
                "run_state": driver.find_element(By.ID, "run-state").text,
                "sending": driver.find_element(By.ID, "sending").text,
                "buttons": [b.get_attribute("id") for b in
                            driver.find_elements(By.CSS_SELECTOR, "#sending button")],
                "svgs": [{"id": svg.get_attribute("id"), "role": svg.get_attribute("role"),
                          "width": svg.size["width"],
                          "sends_bars": len(svg.find_elements(By.CSS_SELECTOR, "rect[fill='#1D4ED8']"))}
                         for svg in svgs]}

    def step(name, seen):
        # One line per step; the test checks the database, then answers with a line.
        seen["step"] = name
        seen["axe"] = axe_findings(driver)
        print(json.dumps(seen), flush=True)
        sys.stdin.readline()

    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        driver.set_window_size(1200, 900)
        try:
            url = base + "/admin/campaigns/" + campaign
            driver.get(url)
            login_url = driver.current_url
            driver.find_element(By.ID, "password").send_keys(password)
            submit(driver.find_element(By.ID, "login"))
            driver.get(url)
            step("loaded", dict(page_state(), login_url=login_url))

            driver.find_element(By.ID, "by-run").send_keys("Maija Markkinoija")
            submit(driver.find_element(By.ID, "pause"))
            step("paused", page_state())

            driver.find_element(By.ID, "by-run").send_keys("Maija Markkinoija")
            submit(driver.find_element(By.ID, "resume"))
            step("resumed", page_state())

            # Cancel without ticking the confirmation: the browser keeps the form.
            driver.find_element(By.ID, "by-cancel").send_keys("Maija Markkinoija")
            confirm = driver.find_element(By.ID, "confirm-cancel")
            button = driver.find_element(By.ID, "cancel")
            button.click()
            time.sleep(0.5)
            unconfirmed = dict(page_state(),
                               confirm_missing=driver.execute_script(
                                   "return arguments[0].validity.valueMissing", confirm),
                               confirm_label=driver.find_element(
                                   By.CSS_SELECTOR, "label[for=confirm-cancel]").text,
                               still_here=not gone(button)(driver))
            step("cancel_unconfirmed", unconfirmed)

            confirm.click()
            submit(button)
            seen = page_state()
            seen["forms"] = len(driver.find_elements(By.CSS_SELECTOR, "#sending form"))
            step("cancelled", seen)
            return
        finally:
            driver.quit()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "unsubscribe":
        print(json.dumps(unsubscribe(sys.argv[2])))
    elif command == "admin":
        shots = sys.argv[6] if len(sys.argv) > 6 else None
        print(json.dumps(admin(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], shots)))
    elif command == "signup":
        print(json.dumps(signup(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])))
    elif command == "confirm":
        print(json.dumps(confirm(sys.argv[2])))
    elif command == "lifecycle":
        lifecycle(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "report":
        shot = sys.argv[5] if len(sys.argv) > 5 else None
        print(json.dumps(report(sys.argv[2], sys.argv[3], sys.argv[4], shot)))
    else:
        sys.exit("unknown command " + command)
