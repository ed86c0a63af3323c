//! The node's clock: wall time, or wall time sped up (for the demo's compressed day).

use lawmesh_sync::time::Millis;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Maps wall time to the milliseconds the sync core is given. Clones share one mapping, so a
/// demo can set the time of every node at once.
#[derive(Clone, Debug)]
pub struct Clock {
    origin: Arc<RwLock<(Instant, Millis)>>,
    speed: f64,
}

impl Clock {
    /// Real time.
    pub fn wall() -> Clock {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis);
        Clock {
            origin: Arc::new(RwLock::new((Instant::now(), ms))),
            speed: 1.0,
        }
    }

    /// Time that reads `start_ms` now and runs `speed` times faster than the wall.
    pub fn scaled(start_ms: Millis, speed: f64) -> Clock {
        Clock {
            origin: Arc::new(RwLock::new((Instant::now(), start_ms))),
            speed: speed.max(0.001),
        }
    }

    /// Make the clock read `ms` now (for every clone).
    pub fn set(&self, ms: Millis) {
        if let Ok(mut o) = self.origin.write() {
            *o = (Instant::now(), ms);
        }
    }

    fn origin(&self) -> (Instant, Millis) {
        self.origin.read().map_or_else(|p| *p.into_inner(), |o| *o)
    }

    /// The time now.
    pub fn now(&self) -> Millis {
        let (at, ms) = self.origin();
        ms + (at.elapsed().as_secs_f64() * 1e3 * self.speed) as Millis
    }

    /// The wall instant at which this clock reads `ms`.
    pub fn instant_for(&self, ms: Millis) -> Instant {
        let (at, origin_ms) = self.origin();
        let ahead = ms.saturating_sub(origin_ms) as f64 / self.speed;
        at + Duration::from_secs_f64(ahead / 1e3)
    }

    /// How fast it runs.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}
