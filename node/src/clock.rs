//! The node's clock: wall time, or wall time sped up (for the demo's compressed day).

use lawmesh_sync::time::Millis;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Maps wall time to the milliseconds the sync core is given.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    origin_ms: Millis,
    speed: f64,
}

impl Clock {
    /// Real time.
    pub fn wall() -> Clock {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis);
        Clock { origin: Instant::now(), origin_ms: ms, speed: 1.0 }
    }

    /// Time that starts at `start_ms` now and runs `speed` times faster than the wall.
    pub fn scaled(start_ms: Millis, speed: f64) -> Clock {
        Clock { origin: Instant::now(), origin_ms: start_ms, speed: speed.max(0.001) }
    }

    /// Same mapping, shared by several nodes (the demo's nodes all read one clock).
    pub fn now(&self) -> Millis {
        self.origin_ms + (self.origin.elapsed().as_secs_f64() * 1e3 * self.speed) as Millis
    }

    /// The wall instant at which this clock reads `ms`.
    pub fn instant_for(&self, ms: Millis) -> Instant {
        let ahead = ms.saturating_sub(self.origin_ms) as f64 / self.speed;
        self.origin + Duration::from_secs_f64(ahead / 1e3)
    }

    /// How fast it runs.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}
