//! The soak's report section (markdown tables) and the conditions that fail the run.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::client::Run;
use crate::soak::{self, Settings, Soak};
use crate::{mb, met, ms, rate};

/// Within this of the after-warm-up sample, the last RSS sample reads as flat. Reported,
/// never asserted: on a shared machine RSS moves with what the allocator keeps.
const FLAT: f64 = 0.10;

fn sorted_run(latencies_us: &[u32], ok: u64, elapsed: Duration) -> Run {
    let mut latencies_us = latencies_us.to_vec();
    latencies_us.sort_unstable();
    Run {
        ok,
        elapsed,
        latencies_us,
        ..Run::default()
    }
}

fn max_ms(run: &Run) -> f64 {
    run.latencies_us
        .last()
        .map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
}

/// The RSS sample read as "after warm-up": the first a quarter in, or 30 s in if sooner.
fn after_warmup(s: &Soak, settings: &Settings) -> (Duration, u64) {
    let w = (settings.duration / 4).min(Duration::from_secs(30));
    s.rss
        .iter()
        .find(|(at, _)| *at >= w)
        .or(s.rss.last())
        .copied()
        .unwrap_or_default()
}

/// Why the soak failed, if it did: wrong answers, requests past their timeout or never
/// answered, failed invalidations, sources not UP or still holding something after the wait.
pub fn failures(s: &Soak) -> Vec<String> {
    let t = &s.tally;
    let mut f = Vec::new();
    if t.checked == 0 {
        f.push("no answer was checked".to_string());
    }
    if t.wrong > 0 {
        f.push(format!(
            "{} wrong answers, e.g. {}",
            t.wrong,
            t.wrong_examples.join("; ")
        ));
    }
    if t.unanswered > 0 {
        f.push(format!(
            "{} requests never answered (connection closed, or nothing within {:?})",
            t.unanswered,
            soak::REQUEST_TIMEOUT + soak::GRACE
        ));
    }
    if t.over_timeout > 0 {
        f.push(format!(
            "{} answers took longer than the request timeout ({:?})",
            t.over_timeout,
            soak::REQUEST_TIMEOUT
        ));
    }
    if let Some(e) = &s.invalidation_failure {
        f.push(format!("a cache invalidation failed: {e}"));
    }
    for x in &s.settled {
        if x["status"] != "UP" {
            f.push(format!(
                "source {} is {} at the end: {x}",
                x["name"], x["status"]
            ));
        }
        if soak::held(x) != (0, 0, 0) {
            f.push(format!(
                "source {} still holds calls, permits or connections {:?} after the wait: {x}",
                x["name"],
                soak::SETTLE
            ));
        }
    }
    if let Err(e) = &s.final_pass {
        f.push(format!("after the soak, an operation failed: {e}"));
    }
    f
}

pub fn report(s: &Soak, settings: &Settings) -> String {
    let t = &s.tally;
    let all: Vec<u32> = t.latencies_us.iter().flatten().copied().collect();
    let run = sorted_run(&all, t.checked, s.elapsed);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "## Soak\n");
    let _ = writeln!(
        w,
        "settings: {} connections, {:?} of the {} operations of queries/ in random order \
         (seed {:#x}), {:.0}% hung up on 0–5 ms after the request (half of them with a TCP \
         reset), the whole cache invalidated every {:?}, request timeout {:?}\n",
        settings.connections,
        settings.duration,
        s.names.len(),
        soak::SEED,
        soak::HANG_UP * 100.0,
        settings.invalidate_every,
        soak::REQUEST_TIMEOUT
    );
    let secs = s.elapsed.as_secs_f64();
    let _ = writeln!(w, "| figure | this run |\n|---|---:|");
    for (what, value) in [
        (
            "requests sent".to_string(),
            format!("{} ({}/s)", t.sent, rate(t.sent as f64 / secs)),
        ),
        (
            "answers checked against queries/*.snap".into(),
            format!("{} ({}/s)", t.checked, rate(run.rate())),
        ),
        (
            "checked answers that called a source, not only the cache (their calls)".into(),
            format!("{} ({})", t.from_sources, t.calls),
        ),
        ("wrong answers".into(), t.wrong.to_string()),
        (
            "Simpul CPU time (cores busy on average)".into(),
            format!(
                "{:.1} s ({:.2})",
                s.cpu.as_secs_f64(),
                s.cpu.as_secs_f64() / secs
            ),
        ),
        (
            "hung up mid-request (with a TCP reset)".into(),
            format!("{} ({})", t.hung_up, t.reset),
        ),
        (
            "never answered (closed, or nothing within the timeout + 5 s)".into(),
            t.unanswered.to_string(),
        ),
        ("connect errors".into(), t.connect_errors.to_string()),
        (
            "latency of answers, p50 / p99 / max (ms)".into(),
            format!(
                "{} / {} / {}",
                ms(run.quantile_ms(0.5)),
                ms(run.quantile_ms(0.99)),
                ms(max_ms(&run))
            ),
        ),
        (
            format!(
                "answers over the {:?} request timeout",
                soak::REQUEST_TIMEOUT
            ),
            t.over_timeout.to_string(),
        ),
        (
            "cache invalidations".into(),
            match &s.invalidation_failure {
                None => s.invalidations.to_string(),
                Some(e) => format!("{} (failed: {e})", s.invalidations),
            },
        ),
        (
            "after the soak: every operation once, after an invalidation (slowest ms)".into(),
            match &s.final_pass {
                Ok(d) => ms(d.as_secs_f64() * 1e3),
                Err(e) => format!("failed: {e}"),
            },
        ),
    ] {
        let _ = writeln!(w, "| {what} | {value} |");
    }

    let first = s.rss.first().map_or(0, |r| r.1);
    let last = s.rss.last().map_or(0, |r| r.1);
    let (warm_at, warm) = after_warmup(s, settings);
    let flat = last as f64 / warm.max(1) as f64;
    let _ = writeln!(w, "\n| Simpul RSS | MB |\n|---|---:|");
    let _ = writeln!(w, "| before the traffic | {} |", mb(first));
    let _ = writeln!(
        w,
        "| after warm-up ({:.0} s in) | {} |",
        warm_at.as_secs_f64(),
        mb(warm)
    );
    let _ = writeln!(w, "| last (end of the traffic) | {} |", mb(last));
    let _ = writeln!(w, "| peak (VmHWM) | {} |", mb(s.peak_rss));
    let _ = writeln!(w, "| last / after warm-up | {flat:.3} |");
    let samples: Vec<String> = s.rss.iter().map(|(_, b)| mb(*b)).collect();
    let _ = writeln!(
        w,
        "\nRSS samples, MB, every {:?}: {}",
        settings.sample_every,
        samples.join(", ")
    );

    let _ = writeln!(
        w,
        "\n| operation | answers | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|"
    );
    for (name, lat) in s.names.iter().zip(&t.latencies_us) {
        let r = sorted_run(lat, lat.len() as u64, s.elapsed);
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} |",
            lat.len(),
            ms(r.quantile_ms(0.5)),
            ms(r.quantile_ms(0.99)),
            ms(max_ms(&r))
        );
    }

    let waited = match s.settled_in {
        None => format!("still held after {:?}", soak::SETTLE),
        Some(d) if d.is_zero() => "nothing was held when the traffic ended".to_string(),
        Some(d) => format!("all given back {} ms later", ms(d.as_secs_f64() * 1e3)),
    };
    let _ = writeln!(
        w,
        "\nSources from `/readyz`: calls in flight / permits in use / pool connections in use, \
         when the last answer was read and after the wait for them to end: {waited}.\n"
    );
    let _ = writeln!(
        w,
        "| source | kind | status | circuit | held at the end | held after the wait | pool open / max | recycles |\n|---|---|---|---|---|---|---|---:|"
    );
    let held = |x: Option<&Value>| {
        x.map_or("–".to_string(), |x| {
            let (a, b, c) = soak::held(x);
            format!("{a} / {b} / {c}")
        })
    };
    let text = |x: &Value, k: &str| x[k].as_str().unwrap_or("–").to_string();
    let num = |x: &Value, k: &str| x[k].as_u64().map_or("–".into(), |n| n.to_string());
    for x in &s.settled {
        let end = s.at_end.iter().find(|e| e["name"] == x["name"]);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            text(x, "name"),
            text(x, "kind"),
            text(x, "status"),
            text(x, "circuit"),
            held(end),
            held(Some(x)),
            num(x, "poolOpen"),
            num(x, "poolMax"),
            num(x, "poolRecycles"),
        );
    }

    let up = s.settled.iter().filter(|x| x["status"] == "UP").count();
    let worst = max_ms(&run);
    let targets = [
        (
            "every source UP at the end, holding nothing after the wait".to_string(),
            format!("{up} of {} UP; {waited}", s.settled.len()),
            up == s.settled.len() && s.settled_in.is_some(),
        ),
        (
            format!(
                "no request longer than its timeout ({:?})",
                soak::REQUEST_TIMEOUT
            ),
            format!("max {} ms; {} never answered", ms(worst), t.unanswered),
            t.over_timeout == 0 && t.unanswered == 0,
        ),
        (
            format!(
                "RSS flat: last within {:.0}% of after warm-up",
                FLAT * 100.0
            ),
            format!("{flat:.3}×"),
            (flat - 1.0).abs() <= FLAT,
        ),
        (
            "every answer right".into(),
            format!("{} wrong of {}", t.wrong, t.checked + t.wrong),
            t.wrong == 0,
        ),
    ];
    let _ = writeln!(w, "\n| target | this run | |\n|---|---|---|");
    for (target, value, ok) in targets {
        let _ = writeln!(w, "| {target} | {value} | {} |", met(ok));
    }
    out
}
