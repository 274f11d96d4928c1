//! The counts behind `fairsend report` and `/admin/campaigns/NAME`: one grouped query per
//! measure, each grouped by A/B variant and register, over the tables where the events are
//! recorded. It counts; `app::report` turns the counts into rates and warnings.

use sqlx::Row;

use super::{Store, StoreError};

/// Bounces and complaints count only once their origin is proven (VERP token) or an operator
/// confirmed them: anyone can mail a forged bounce.
const VERIFIED: &str = "b.verification IN ('proven', 'confirmed')";
/// A message the receiving server accepted. A hard bounce later turns its row `failed` but
/// keeps its `sent_at`: it was sent, and then bounced.
const SENT: &str = "o.sent_at IS NOT NULL AND o.state IN ('sent', 'failed')";

/// One count of one measure for one (variant, register) group. `key` says which bucket of the
/// measure (a bounce class and reason, an opt-out source, a link index); empty when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    /// `None` outside an A/B test (and for the remainder's rows before a winner was given).
    pub variant: Option<i64>,
    /// `None` when the message row is gone (the person's data was erased).
    pub register: Option<String>,
    pub key: String,
    pub count: i64,
}

/// Sent and delivered messages of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCount {
    pub variant: Option<i64>,
    pub register: String,
    pub sent: i64,
    /// Sent before the cut-off and no verified bounce since.
    pub delivered: i64,
    /// Refused by the receiving server during the SMTP transaction (state `failed`).
    pub rejected: i64,
}

fn group_counts(rows: Vec<sqlx::any::AnyRow>) -> Vec<GroupCount> {
    rows.iter()
        .map(|r| GroupCount {
            variant: r.get("variant"),
            register: r.get("register"),
            key: r.get::<Option<String>, _>("k").unwrap_or_default(),
            count: r.get("n"),
        })
        .collect()
}

impl Store {
    /// Sent, delivered (sent at or before `delivered_before` with no verified bounce) and
    /// rejected messages per group.
    pub async fn report_sent(
        &self,
        campaign_id: i64,
        delivered_before: i64,
    ) -> Result<Vec<SentCount>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.variant, o.register,
                    SUM(CASE WHEN {SENT} THEN 1 ELSE 0 END) AS sent,
                    SUM(CASE WHEN {SENT} AND o.sent_at <= $2 AND NOT EXISTS
                             (SELECT 1 FROM bounces b WHERE b.outbox_id = o.id AND b.kind = 'dsn'
                                 AND b.class IS NOT NULL AND {VERIFIED})
                        THEN 1 ELSE 0 END) AS delivered,
                    SUM(CASE WHEN o.state = 'failed' AND o.sent_at IS NULL THEN 1 ELSE 0 END) AS rejected
               FROM outbox o WHERE o.campaign_id = $1
              GROUP BY o.variant, o.register ORDER BY o.variant, o.register"
        ))
        .bind(campaign_id)
        .bind(delivered_before)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| SentCount {
                variant: r.get("variant"),
                register: r.get("register"),
                sent: r.get::<Option<i64>, _>("sent").unwrap_or(0),
                delivered: r.get::<Option<i64>, _>("delivered").unwrap_or(0),
                rejected: r.get::<Option<i64>, _>("rejected").unwrap_or(0),
            })
            .collect())
    }

    /// Messages with a verified bounce, per group, keyed `class:reason`.
    pub async fn report_bounces(&self, campaign_id: i64) -> Result<Vec<GroupCount>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.variant, o.register, b.class || ':' || b.reason AS k,
                    COUNT(DISTINCT b.outbox_id) AS n
               FROM bounces b JOIN outbox o ON o.id = b.outbox_id
              WHERE o.campaign_id = $1 AND b.kind = 'dsn' AND b.class IS NOT NULL AND {VERIFIED}
              GROUP BY o.variant, o.register, b.class, b.reason
              ORDER BY o.variant, o.register, k"
        ))
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(group_counts(rows))
    }

    /// Messages with a verified complaint (ARF report), per group.
    pub async fn report_complaints(&self, campaign_id: i64) -> Result<Vec<GroupCount>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT o.variant, o.register, '' AS k, COUNT(DISTINCT b.outbox_id) AS n
               FROM bounces b JOIN outbox o ON o.id = b.outbox_id
              WHERE o.campaign_id = $1 AND b.kind = 'complaint' AND {VERIFIED}
              GROUP BY o.variant, o.register ORDER BY o.variant, o.register"
        ))
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(group_counts(rows))
    }

    /// Opt-outs attributed to the campaign, per group, keyed by source. An opt-out whose
    /// contact was erased since still counts, in no register.
    pub async fn report_optouts(&self, campaign_id: i64) -> Result<Vec<GroupCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.variant, o.register, p.source AS k, COUNT(*) AS n
               FROM optouts p
               LEFT JOIN contacts c ON c.email_hash = p.email_hash
               LEFT JOIN outbox o ON o.contact_id = c.id AND o.campaign_id = p.campaign_id
              WHERE p.campaign_id = $1
              GROUP BY o.variant, o.register, p.source ORDER BY o.variant, o.register, p.source",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(group_counts(rows))
    }

    /// Messages with at least one `kind` event (click or open) at least `min_delay_ms` after
    /// sending, per group and per link (key = the link's index; `*` = any link).
    pub async fn report_events(
        &self,
        campaign_id: i64,
        kind: &str,
        min_delay_ms: i64,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let mut out = Vec::new();
        for by_link in [false, true] {
            let key = if by_link {
                "CAST(e.link AS TEXT)"
            } else {
                "'*'"
            };
            let group = if by_link { ", e.link" } else { "" };
            let rows = sqlx::query(&format!(
                "SELECT o.variant, o.register, {key} AS k, COUNT(DISTINCT e.outbox_id) AS n
                   FROM message_events e JOIN outbox o ON o.id = e.outbox_id
                  WHERE o.campaign_id = $1 AND e.kind = $2 AND e.created_at - o.sent_at >= $3
                        AND ($4 = 0 OR e.link IS NOT NULL)
                  GROUP BY o.variant, o.register{group} ORDER BY o.variant, o.register"
            ))
            .bind(campaign_id)
            .bind(kind)
            .bind(min_delay_ms)
            .bind(i64::from(by_link))
            .fetch_all(self.pool())
            .await?;
            out.extend(group_counts(rows));
        }
        Ok(out)
    }

    /// Messages whose recipient replied (a reply ingested for this campaign), per group.
    pub async fn report_replies(&self, campaign_id: i64) -> Result<Vec<GroupCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.variant, o.register, '' AS k, COUNT(DISTINCT o.id) AS n
               FROM engagements e
               JOIN contacts c ON c.email_hash = e.email_hash
               JOIN outbox o ON o.contact_id = c.id AND o.campaign_id = e.campaign_id
              WHERE e.campaign_id = $1 AND e.kind = 'reply'
              GROUP BY o.variant, o.register ORDER BY o.variant, o.register",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        Ok(group_counts(rows))
    }

    /// The campaign's tracked links: (index, URL).
    pub async fn report_links(&self, campaign_id: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT idx, url FROM campaign_links WHERE campaign_id = $1 ORDER BY idx")
                .bind(campaign_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.iter().map(|r| (r.get("idx"), r.get("url"))).collect())
    }

    /// Sends and verified bounces per time bucket of `bucket_ms` (bucket start, sends,
    /// bounces), in time order; buckets with neither are left out.
    pub async fn report_timeline(
        &self,
        campaign_id: i64,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT t.bucket, SUM(t.sends) AS sends, SUM(t.bounces) AS bounces FROM (
                 SELECT o.sent_at / $2 AS bucket, 1 AS sends, 0 AS bounces
                   FROM outbox o WHERE o.campaign_id = $1 AND {SENT}
                 UNION ALL
                 SELECT b.received_at / $2 AS bucket, 0 AS sends, 1 AS bounces
                   FROM bounces b JOIN outbox o ON o.id = b.outbox_id
                  WHERE o.campaign_id = $1 AND b.kind = 'dsn' AND b.class IS NOT NULL AND {VERIFIED}
             ) t GROUP BY t.bucket ORDER BY t.bucket"
        ))
        .bind(campaign_id)
        .bind(bucket_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>("bucket") * bucket_ms,
                    r.get::<Option<i64>, _>("sends").unwrap_or(0),
                    r.get::<Option<i64>, _>("bounces").unwrap_or(0),
                )
            })
            .collect())
    }

    /// The first and last send or verified bounce of the campaign, if any.
    pub async fn report_span(&self, campaign_id: i64) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT MIN(t.at) AS first, MAX(t.at) AS last FROM (
                 SELECT o.sent_at AS at FROM outbox o WHERE o.campaign_id = $1 AND {SENT}
                 UNION ALL
                 SELECT b.received_at AS at FROM bounces b JOIN outbox o ON o.id = b.outbox_id
                  WHERE o.campaign_id = $1 AND b.kind = 'dsn' AND b.class IS NOT NULL AND {VERIFIED}
             ) t"
        ))
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        let first: Option<i64> = row.get("first");
        let last: Option<i64> = row.get("last");
        Ok(first.zip(last))
    }
}
