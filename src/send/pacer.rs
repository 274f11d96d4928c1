//! The campaign-wide messages-per-second limit. Send slots come from one row in the database
//! that every worker of the campaign draws from, a few at a time, so the limit holds for all
//! workers together; within a worker, the concurrent senders share the slots it reserved.
//! Slot times are wall-clock microseconds: workers on several machines need synchronised
//! clocks (NTP), as any skew lets one machine's slots run early by that much.

use tokio::sync::Mutex;

use crate::store::{Store, StoreError};

pub struct Pacer {
    store: Store,
    campaign_id: i64,
    interval_us: i64,
    /// Slots reserved per database round trip: about 50 ms worth, at least one.
    batch: i64,
    /// The next reserved slot and how many reserved slots are left.
    reserved: Mutex<(i64, i64)>,
}

impl Pacer {
    pub fn per_second(store: Store, campaign_id: i64, rate: f64) -> Self {
        let interval_us = ((1_000_000.0 / rate).round() as i64).max(1);
        Self {
            store,
            campaign_id,
            interval_us,
            batch: ((rate / 20.0).floor() as i64).clamp(1, 64),
            reserved: Mutex::new((0, 0)),
        }
    }

    /// Waits for this caller's slot. An idle period does not bank slots for a later burst, and
    /// neither does a stall: a reserved slot already more than [`LATE`] past is dropped, not
    /// spent, so a process that fell behind (a busy CPU, a slow database) cannot catch up in a
    /// burst above the limit.
    pub async fn wait(&self) -> Result<(), StoreError> {
        let slot = loop {
            let mut reserved = self.reserved.lock().await;
            if reserved.1 == 0 {
                let first = self
                    .store
                    .reserve_slots(self.campaign_id, now_us(), self.interval_us, self.batch)
                    .await?;
                *reserved = (first, self.batch);
            }
            let slot = reserved.0;
            *reserved = (slot + self.interval_us, reserved.1 - 1);
            if now_us() - slot <= LATE.max(self.interval_us) {
                break slot;
            }
        };
        let wait = slot - now_us();
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(wait as u64)).await;
        }
        Ok(())
    }
}

/// How late a reserved slot may still be used, in microseconds.
const LATE: i64 = 20_000;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
