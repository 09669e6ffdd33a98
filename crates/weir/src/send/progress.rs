//! Live progress on stderr: records sent and acknowledged, the current rate, errors and latency so far.

use super::client::Sender;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(100);
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Redraws every [`TICK`] until `done` changes, then clears the line.
pub async fn show(sender: Arc<Sender>, total: Option<u64>, mut done: watch::Receiver<bool>) {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed}] {msg}")
                .expect("valid progress template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("valid progress template")),
    };
    // (time, records acknowledged) over the last [`RATE_WINDOW`]: connections report every 200 ms, so
    // the rate is taken over a window of several reports.
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::from([(Instant::now(), 0)]);
    let mut interval = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = done.changed() => break,
        }
        let stats = sender.stats.lock().expect("stats lock");
        let now = Instant::now();
        samples.push_back((now, stats.records_acked));
        while samples.len() > 2 && now.duration_since(samples[0].0) > RATE_WINDOW {
            samples.pop_front();
        }
        let (since, acked_then) = samples[0];
        let seconds = now.duration_since(since).as_secs_f64().max(1e-3);
        let rate = (stats.records_acked - acked_then) as f64 / seconds;
        let ms = |q: f64| stats.latency.value_at_quantile(q) as f64 / 1000.0;
        bar.set_position(stats.records_sent);
        bar.set_message(format!(
            "sent {} · acked {} · {:.0} rec/s · errors {} · retries {} · p50 {:.2} ms · p99 {:.2} ms",
            stats.records_sent,
            stats.records_acked,
            rate,
            stats.records_failed,
            stats.retries,
            ms(0.5),
            ms(0.99)
        ));
    }
    bar.finish_and_clear();
}
