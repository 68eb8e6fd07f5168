//! The store's behaviour, the same on SQLite and PostgreSQL.

use serde_json::json;

use super::{backends, firing, scalar};
use crate::state::{AlertFilter, EventKind, Refused, RuleRun, rfc3339};

const T0: i64 = 1_750_000_000_000;

#[tokio::test]
async fn one_open_alert_per_key_until_it_clears() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let a = store
            .fire(&firing("stunting", "3503010", "", T0))
            .await
            .unwrap();
        let a = a.unwrap_or_else(|| panic!("{on}: first firing raises"));
        assert_eq!(
            (a.status.as_str(), a.raised_at.clone()),
            ("OPEN", rfc3339(T0))
        );
        assert_eq!(a.raised_at, "2025-06-15T15:06:40.000Z", "{on}");

        let mut again = firing("stunting", "3503010", "", T0 + 1000);
        again.evidence = json!({"value": 2});
        again.message = "stunting above 25%".into();
        assert!(store.fire(&again).await.unwrap().is_none(), "{on}");
        let refreshed = store.alert(a.id).await.unwrap().unwrap();
        assert_eq!(refreshed.evidence, json!({"value": 2}), "{on}");
        assert_eq!(refreshed.message, "stunting above 25%", "{on}");
        assert_eq!(refreshed.last_seen_at, rfc3339(T0 + 1000), "{on}");
        assert_eq!(refreshed.raised_at, rfc3339(T0), "{on}");

        // Another region, another key of the same region, another rule: each its own alert.
        let b = store
            .fire(&firing("stunting", "3503020", "", T0))
            .await
            .unwrap();
        let c = store
            .fire(&firing("stunting", "3503010", "rt01", T0))
            .await
            .unwrap();
        let d = store
            .fire(&firing("flood", "3503010", "", T0))
            .await
            .unwrap();
        let (b, c, d) = (b.unwrap(), c.unwrap(), d.unwrap());

        let still = [("3503020".to_string(), String::new())];
        let cleared = store.clear("stunting", &still, T0 + 2000).await.unwrap();
        let mut ids: Vec<i64> = cleared.iter().map(|x| x.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![a.id, c.id], "{on}");
        for x in &cleared {
            assert_eq!(x.status, "RESOLVED", "{on}");
            assert_eq!(x.resolution.as_deref(), Some("AUTO"), "{on}");
            assert_eq!(x.resolved_by.as_deref(), Some("simpul"), "{on}");
            assert_eq!(x.resolved_at, Some(rfc3339(T0 + 2000)), "{on}");
        }
        for open in [b.id, d.id] {
            assert_eq!(store.alert(open).await.unwrap().unwrap().status, "OPEN");
        }
        assert!(
            store
                .clear("stunting", &still, T0 + 3000)
                .await
                .unwrap()
                .is_empty()
        );

        let reraised = store
            .fire(&firing("stunting", "3503010", "", T0 + 4000))
            .await;
        let reraised = reraised.unwrap().unwrap();
        assert_ne!(reraised.id, a.id, "{on}: a cleared alert is never reopened");
        assert_eq!(store.alert(a.id).await.unwrap().unwrap().status, "RESOLVED");
    }
}

#[tokio::test]
async fn acknowledge_resolve_and_notes_keep_the_history() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let a = store
            .fire(&firing("dbd", "3503010", "", T0))
            .await
            .unwrap()
            .unwrap();

        let acked = store
            .acknowledge(a.id, "budi", Some("checking"), T0 + 1)
            .await;
        let acked = acked.unwrap().unwrap();
        assert_eq!(acked.status, "ACKNOWLEDGED", "{on}");
        assert_eq!(acked.acknowledged_by.as_deref(), Some("budi"));
        assert_eq!(acked.acknowledged_at, Some(rfc3339(T0 + 1)));
        assert_eq!(acked.follow_ups.len(), 1, "{on}");
        let first = acked.follow_ups.first().unwrap();
        assert_eq!(
            (first.by.as_str(), first.kind.as_str()),
            ("budi", "ACKNOWLEDGED")
        );
        assert_eq!(
            (first.note.as_str(), first.at.clone()),
            ("checking", rfc3339(T0 + 1))
        );

        // Acknowledging again changes nothing, not even the history.
        let twice = store
            .acknowledge(a.id, "sari", Some("me too"), T0 + 2)
            .await;
        let twice = twice.unwrap().unwrap();
        assert_eq!(twice.acknowledged_by.as_deref(), Some("budi"), "{on}");
        assert_eq!(twice.follow_ups.len(), 1, "{on}");

        let noted = store
            .add_follow_up(a.id, "sari", "posyandu visited", T0 + 3)
            .await;
        let noted = noted.unwrap().unwrap();
        assert_eq!(noted.follow_ups.len(), 2, "{on}");
        assert_eq!(noted.follow_ups.last().unwrap().kind, "NOTE");
        let blank = store.add_follow_up(a.id, "sari", "  ", T0 + 3).await;
        assert_eq!(
            blank.unwrap_err(),
            Refused("a follow-up needs a note".into())
        );

        let resolved = store.resolve(a.id, "sari", Some("done"), T0 + 4).await;
        let resolved = resolved.unwrap().unwrap();
        assert_eq!(resolved.status, "RESOLVED", "{on}");
        assert_eq!(resolved.resolution.as_deref(), Some("MANUAL"));
        assert_eq!(resolved.resolved_by.as_deref(), Some("sari"));
        let kinds: Vec<&str> = resolved
            .follow_ups
            .iter()
            .map(|f| f.kind.as_str())
            .collect();
        assert_eq!(kinds, ["ACKNOWLEDGED", "NOTE", "RESOLVED"], "{on}");

        let refused = Refused(format!("alert {} is already resolved", a.id));
        let again = store.resolve(a.id, "budi", None, T0 + 5).await;
        assert_eq!(again.unwrap_err(), refused, "{on}");
        let late = store.acknowledge(a.id, "budi", None, T0 + 5).await;
        assert_eq!(late.unwrap_err(), refused, "{on}");
        assert_eq!(
            refused.to_string(),
            format!("alert {} is already resolved", a.id)
        );
        // A note after the fact is still history worth keeping.
        let after = store
            .add_follow_up(a.id, "budi", "follow-up visit", T0 + 6)
            .await;
        assert_eq!(after.unwrap().unwrap().follow_ups.len(), 4, "{on}");

        // Resolving an OPEN alert without a note adds no follow-up.
        let b = store
            .fire(&firing("dbd", "3503020", "", T0))
            .await
            .unwrap()
            .unwrap();
        let b = store
            .resolve(b.id, "budi", None, T0 + 7)
            .await
            .unwrap()
            .unwrap();
        assert!(
            b.follow_ups.is_empty() && b.acknowledged_at.is_none(),
            "{on}"
        );

        let missing = 9_999_999;
        assert!(store.alert(missing).await.unwrap().is_none());
        assert!(
            store
                .acknowledge(missing, "x", None, T0)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .resolve(missing, "x", Some("n"), T0)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .add_follow_up(missing, "x", "n", T0)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM simpul_alert_follow_ups").await,
            4
        );
    }
}

#[tokio::test]
async fn listings_filter_by_bound_parameters_newest_first() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let mut ids = Vec::new();
        for (i, (severity, opd, region)) in [
            ("CRITICAL", "dinkes", "3503010"),
            ("WARNING", "dinkes", "3503020"),
            ("WARNING", "bpbd", "3503010"),
            ("INFO", "bpbd", "3503030"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut f = firing("r", region, &format!("k{i}"), T0 + i64::from(i < 2));
            f.severity = severity.into();
            f.opd = opd.into();
            ids.push(store.fire(&f).await.unwrap().unwrap().id);
        }
        let [a, b, c, d] = ids[..] else { panic!() };
        store
            .acknowledge(b, "budi", Some("seen"), T0 + 9)
            .await
            .unwrap();
        store.resolve(d, "budi", None, T0 + 9).await.unwrap();

        let list = |filter: AlertFilter| {
            let store = store.clone();
            async move {
                let found = store.alerts(&filter).await.unwrap();
                found.iter().map(|x| x.id).collect::<Vec<_>>()
            }
        };
        // Raised at T0+1: a, b (b later by id); at T0: c, d.
        assert_eq!(list(AlertFilter::default()).await, vec![b, a, d, c], "{on}");
        let some = |s: &str| Some(s.to_string());
        let by_severity = AlertFilter {
            severity: some("WARNING"),
            ..Default::default()
        };
        assert_eq!(list(by_severity).await, vec![b, c], "{on}");
        let by_opd = AlertFilter {
            opd: some("bpbd"),
            ..Default::default()
        };
        assert_eq!(list(by_opd).await, vec![d, c], "{on}");
        let by_region = AlertFilter {
            region: some("3503010"),
            ..Default::default()
        };
        assert_eq!(list(by_region).await, vec![a, c], "{on}");
        let open = AlertFilter {
            status: some("OPEN"),
            ..Default::default()
        };
        assert_eq!(list(open).await, vec![a, c], "{on}");
        let both = AlertFilter {
            status: some("ACKNOWLEDGED"),
            opd: some("dinkes"),
            ..Default::default()
        };
        assert_eq!(list(both).await, vec![b], "{on}");
        let limited = AlertFilter {
            limit: Some(3),
            ..Default::default()
        };
        assert_eq!(list(limited).await, vec![b, a, d], "{on}");
        // A value is compared, never run: quotes find nothing and break nothing.
        let hostile = AlertFilter {
            opd: some("x' OR '1'='1"),
            ..Default::default()
        };
        assert!(list(hostile).await.is_empty(), "{on}");

        let listed = store.alerts(&AlertFilter::default()).await.unwrap();
        let with_note = listed.iter().find(|x| x.id == b).unwrap();
        assert_eq!(
            with_note.follow_ups.len(),
            1,
            "{on}: listings carry follow-ups"
        );
    }
}

#[tokio::test]
async fn alerts_and_runs_survive_a_reopen_and_migrations_run_once() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let a = store
            .fire(&firing("r", "3503010", "", T0))
            .await
            .unwrap()
            .unwrap();
        store.add_follow_up(a.id, "budi", "note", T0).await.unwrap();
        let run = |firing, error: Option<&str>| RuleRun {
            rule: "r".into(),
            last_run_at: rfc3339(T0 + firing),
            duration_ms: 12.5,
            error: error.map(str::to_string),
            firing,
        };
        store.record_run(&run(1, None)).await.unwrap();
        store
            .record_run(&run(2, Some("source down")))
            .await
            .unwrap();
        drop(store);

        let store = backend.open().await;
        let again = store.alert(a.id).await.unwrap().unwrap();
        assert_eq!(
            (again.rule.as_str(), again.follow_ups.len()),
            ("r", 1),
            "{on}"
        );
        let runs = store.runs().await.unwrap();
        assert_eq!(runs.len(), 1, "{on}: one row per rule");
        let last = runs.first().unwrap();
        assert_eq!((last.firing, last.duration_ms), (2, 12.5), "{on}");
        assert_eq!(last.last_run_at, rfc3339(T0 + 2), "{on}");
        assert_eq!(last.error.as_deref(), Some("source down"), "{on}");
        let bad = RuleRun {
            last_run_at: "yesterday".into(),
            ..last.clone()
        };
        assert!(store.record_run(&bad).await.is_err(), "{on}");
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM simpul_migrations").await,
            crate::state::sql::SQLITE_MIGRATIONS.len() as i64
        );
        // A raise after reopening does not collide with the ids before it.
        let b = store
            .fire(&firing("r", "3503020", "", T0))
            .await
            .unwrap()
            .unwrap();
        assert!(b.id > a.id, "{on}");
    }
}

#[tokio::test]
async fn sqlite_publishes_locally_and_always_leads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = crate::state::StateStore::open(&url).await.unwrap();
    assert!(!store.is_shared());
    let mut events = store.events();
    let a = store
        .fire(&firing("r", "3503010", "", T0))
        .await
        .unwrap()
        .unwrap();
    store.publish(EventKind::Raised, a.id).await.unwrap();
    let event = events.recv().await.unwrap();
    assert_eq!((event.kind, event.alert.id), (EventKind::Raised, a.id));
    assert!(store.publish(EventKind::Changed, a.id + 100).await.is_err());
    let mut leader = store.try_lead().await.unwrap().unwrap();
    assert!(leader.still_leading().await);
    assert!(store.try_lead().await.unwrap().is_some());

    let memory = crate::state::StateStore::open("sqlite::memory:")
        .await
        .unwrap();
    let b = memory.fire(&firing("r", "3503010", "", T0)).await.unwrap();
    assert!(memory.alert(b.unwrap().id).await.unwrap().is_some());
}

#[tokio::test]
async fn open_errors_name_the_url_without_its_password() {
    let url = "postgres://simpul:hunter2@127.0.0.1:1/state";
    let error = crate::state::StateStore::open(url).await.err().unwrap();
    assert!(
        error.contains("postgres://simpul@127.0.0.1:1/state"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    let error = crate::state::StateStore::open("mysql://x")
        .await
        .err()
        .unwrap();
    assert!(
        error.contains("not a sqlite:// or postgres:// URL"),
        "{error}"
    );
}
