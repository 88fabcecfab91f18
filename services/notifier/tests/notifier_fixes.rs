//! Issue 10, defect 5: the daily summary's scheduler loop against real PostgreSQL and the
//! testkit's real SMTP server. One admin address refused for good used to roll back the whole
//! day and resend everyone's summary at every check, for ever.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

mod notifier_fixes {
    use chrono::{DateTime, NaiveTime, Utc};
    use notifier::mailer::Mailer;
    use notifier::settings::{DailySummary, Settings};
    use notifier::summary::SummaryJob;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use testkit::{SmtpServer, TestDatabase, eventually};
    use tokio_util::sync::CancellationToken;

    const TIMEOUT: Duration = Duration::from_secs(20);

    struct Harness {
        db: TestDatabase,
        pool: platform::db::PgPool,
        smtp: SmtpServer,
    }

    impl Harness {
        async fn start() -> Self {
            let db = TestDatabase::create().await.unwrap();
            let pool = platform::db::pool(&db.url_for("notifier"), 4).unwrap();
            let sources = vec![messaging::MIGRATIONS, notifier::startup::MIGRATIONS];
            platform::db::migrate(&pool, platform::db::lock_key("notifier"), sources).await.unwrap();
            Self { db, pool, smtp: SmtpServer::start().await.unwrap() }
        }

        /// The real scheduler, checking every 20 ms at a fixed `now`, with these admins.
        fn job(&self, now: &str, recipients: &[&str]) -> SummaryJob {
            let mut settings = Settings::load().unwrap();
            settings.smtp_url = Some(platform::settings::Secret::new(self.smtp.url()));
            let mailer = Mailer::from_settings(&settings).unwrap();
            let config = DailySummary {
                at: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
                recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            };
            let mut job = SummaryJob::new(self.pool.clone(), Arc::new(mailer), config);
            let now: DateTime<Utc> = now.parse().unwrap();
            job.check_every = Duration::from_millis(20);
            job.clock = Arc::new(move || now);
            job
        }

        /// Runs `job` until it has finished `checks` checks, then stops it.
        async fn run_for(&self, job: SummaryJob, checks: u64) {
            let (done, cancel) = (job.checks.clone(), CancellationToken::new());
            let task = tokio::spawn(job.run(cancel.clone()));
            eventually(&format!("{checks} checks"), TIMEOUT, || async {
                (done.load(Ordering::SeqCst) >= checks).then_some(())
            })
            .await;
            cancel.cancel();
            task.await.unwrap();
        }

        /// Who received the summary of `day`, one entry per email, sorted.
        fn received(&self, day: &str) -> Vec<String> {
            let subject = format!("Sales summary for {day}");
            let mut to: Vec<String> = self
                .smtp
                .received()
                .into_iter()
                .filter(|m| m.header("subject").is_some_and(|s| s.contains(&subject)))
                .flat_map(|m| m.to)
                .collect();
            to.sort();
            to
        }

        async fn count(&self, sql: &str) -> i64 {
            self.db.count(sql).await.unwrap()
        }
    }

    #[tokio::test]
    async fn a_permanently_rejected_admin_is_recorded_once_and_the_others_get_one_summary() {
        let h = Harness::start().await;
        h.smtp.fail_for("gone@example.com", Some(550));
        let job = h.job("2026-12-10T08:00:00Z", &["ops@example.com", "gone@example.com", "boss@example.com"]);
        h.run_for(job, 10).await;

        assert_eq!(h.received("2026-12-09"), ["boss@example.com", "ops@example.com"], "one email each, once");
        let tried_gone = h.smtp.attempted().iter().filter(|a| *a == "gone@example.com").count();
        assert_eq!(tried_gone, 1, "a 5xx is final: {:?}", h.smtp.attempted());
        let rejected = "SELECT count(*) AS n FROM notifier.summary_deliveries \
                        WHERE day = '2026-12-09' AND recipient = 'gone@example.com' AND status = 'rejected' \
                        AND last_error LIKE '%550%'";
        assert_eq!(h.count(rejected).await, 1);
        let sent = "SELECT count(*) AS n FROM notifier.summary_deliveries WHERE status = 'sent'";
        assert_eq!(h.count(sent).await, 2);
        assert_eq!(h.count("SELECT count(*) AS n FROM notifier.summaries WHERE day = '2026-12-09'").await, 1);

        // A restart (a new job, the same day) sends nothing again.
        h.run_for(h.job("2026-12-10T09:00:00Z", &["ops@example.com", "gone@example.com"]), 3).await;
        assert_eq!(h.smtp.attempted().len(), 3, "{:?}", h.smtp.attempted());
        h.db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn a_try_later_is_retried_for_that_admin_alone_until_it_goes_through() {
        let h = Harness::start().await;
        h.smtp.fail_for("slow@example.com", Some(451));
        let job = h.job("2026-12-10T08:00:00Z", &["ops@example.com", "slow@example.com"]);
        h.run_for(job, 4).await;
        assert_eq!(h.received("2026-12-09"), ["ops@example.com"]);
        let retrying = "SELECT count(*) AS n FROM notifier.summary_deliveries \
                        WHERE recipient = 'slow@example.com' AND status = 'retrying' AND attempts >= 2";
        assert_eq!(h.count(retrying).await, 1, "retried at later checks");
        assert_eq!(h.count("SELECT count(*) AS n FROM notifier.summaries").await, 0, "the day is not done");

        h.smtp.fail_for("slow@example.com", None);
        h.run_for(h.job("2026-12-10T08:05:00Z", &["ops@example.com", "slow@example.com"]), 4).await;
        assert_eq!(h.received("2026-12-09"), ["ops@example.com", "slow@example.com"], "each once");
        assert_eq!(h.count("SELECT count(*) AS n FROM notifier.summaries WHERE day = '2026-12-09'").await, 1);
        h.db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn missed_days_are_caught_up_once_each_after_downtime() {
        let h = Harness::start().await;
        // The last summary before the outage was for the 6th; the service comes back on the 10th.
        let mut conn = h.pool.get().await.unwrap();
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(
                "INSERT INTO summaries (day, recipients) VALUES ('2026-12-06', 'ops@example.com')",
            ),
            &mut conn,
        )
        .await
        .unwrap();
        drop(conn);
        h.run_for(h.job("2026-12-10T08:00:00Z", &["ops@example.com"]), 5).await;
        for day in ["2026-12-07", "2026-12-08", "2026-12-09"] {
            assert_eq!(h.received(day), ["ops@example.com"], "{day} once");
        }
        assert_eq!(h.received("2026-12-06"), Vec::<String>::new(), "a sent day is not sent again");
        assert_eq!(h.received("2026-12-10"), Vec::<String>::new(), "today is not over");
        assert_eq!(h.smtp.received().len(), 3);
        h.db.drop_database().await.unwrap();
    }
}
