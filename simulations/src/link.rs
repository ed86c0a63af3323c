//! One simulated link: whether it is up, and how a message crosses it — queued behind earlier
//! messages (bandwidth), delayed by latency, retransmitted when lost (with bursts of heavy loss,
//! a Gilbert–Elliott model), and declared dead after too many losses in a row.

use crate::random::SimRng;
use crate::scenario::LinkClass;
use crate::topology::LinkKind;
use lawmesh_sync::time::Millis;

/// What happened to a message handed to a link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transmit {
    /// It arrives at this time.
    Arrives(Millis),
    /// It was lost too many times: the connection dies at this time.
    ConnectionDies(Millis),
}

/// A link's state.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) kind: LinkKind,
    pub(crate) params: LinkClass,
    /// Inside fixed outage windows (a count: windows may overlap).
    pub(crate) windows_down: u32,
    /// Down after a random failure.
    pub(crate) failed: bool,
    /// The connection died; waiting to redial.
    pub(crate) redialing: bool,
    /// Connected now (both replicas were told).
    pub(crate) connected: bool,
    /// Bumped at every connect and disconnect; messages of an older epoch are dropped.
    pub(crate) epoch: u64,
    /// Per direction (0: a→b, 1: b→a): when the sender is done transmitting.
    busy_until: [Millis; 2],
    /// Per direction: the last arrival time (a connection delivers in order).
    last_arrival: [Millis; 2],
    /// The current or next burst of heavy loss.
    burst: (Millis, Millis),
    /// Per direction: bytes and messages sent.
    pub(crate) bytes: [u64; 2],
    pub(crate) messages: [u64; 2],
    /// Outage bookkeeping: times the link went down, and total minutes down.
    pub(crate) downs: u64,
    pub(crate) down_since: Option<Millis>,
    pub(crate) down_ms: u64,
}

impl Link {
    pub(crate) fn new(a: usize, b: usize, kind: LinkKind, params: LinkClass) -> Link {
        Link {
            a,
            b,
            kind,
            params,
            windows_down: 0,
            failed: false,
            redialing: false,
            connected: false,
            epoch: 0,
            busy_until: [0; 2],
            last_arrival: [0; 2],
            burst: (0, 0),
            bytes: [0; 2],
            messages: [0; 2],
            downs: 0,
            down_since: None,
            down_ms: 0,
        }
    }

    /// Is the link itself usable (ignoring whether its nodes run)?
    pub(crate) fn healthy(&self) -> bool {
        self.windows_down == 0 && !self.failed && !self.redialing
    }

    /// The other end.
    pub(crate) fn peer(&self, node: usize) -> usize {
        if node == self.a {
            self.b
        } else {
            self.a
        }
    }

    /// The connection came up or went down at `now`.
    pub(crate) fn set_connected(&mut self, up: bool, now: Millis) {
        self.connected = up;
        self.epoch += 1;
        self.busy_until = [now; 2];
        self.last_arrival = [now; 2];
    }

    /// Send `len` bytes from `from` at `now`. With `lossless` (the healed phase) nothing is lost.
    pub(crate) fn transmit(
        &mut self,
        from: usize,
        len: usize,
        now: Millis,
        lossless: bool,
        max_retransmits: u32,
        rng: &mut SimRng,
    ) -> Transmit {
        let dir = usize::from(from != self.a);
        self.bytes[dir] += len as u64;
        self.messages[dir] += 1;
        let bits = len as u64 * 8;
        let kbps = self.params.bandwidth_kbps.max(1);
        let serialise = bits.div_ceil(kbps);
        let start = now.max(self.busy_until[dir]);
        let sent = start + serialise;
        self.busy_until[dir] = sent;
        let loss = if lossless {
            0.0
        } else {
            self.loss_at(now, rng)
        };
        let rto = (3 * self.params.latency_ms).max(200);
        let mut delay = 0;
        let mut tries = 0;
        while rng.chance(loss) {
            delay += rto << tries.min(10);
            tries += 1;
            if tries >= max_retransmits {
                return Transmit::ConnectionDies(sent + delay);
            }
        }
        let arrive = (sent + self.params.latency_ms + delay).max(self.last_arrival[dir]);
        self.last_arrival[dir] = arrive;
        Transmit::Arrives(arrive)
    }

    /// The loss rate at `now`, advancing the burst process lazily.
    fn loss_at(&mut self, now: Millis, rng: &mut SimRng) -> f64 {
        let p = &self.params;
        if p.burst_every_hours <= 0.0 {
            return p.loss;
        }
        while now >= self.burst.1 {
            let gap = rng.exponential(p.burst_every_hours * 3_600_000.0) as Millis;
            let len = rng.exponential(p.burst_minutes * 60_000.0).max(1.0) as Millis;
            let start = self.burst.1.max(now.saturating_sub(gap)) + gap;
            self.burst = (start, start + len);
        }
        if now >= self.burst.0 {
            p.burst_loss
        } else {
            p.loss
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_queue_behind_each_other_and_arrive_in_order() {
        let class = LinkClass {
            latency_ms: 30,
            bandwidth_kbps: 8,
            ..LinkClass::default()
        };
        let mut l = Link::new(0, 1, LinkKind::TownshipUplink, class);
        l.set_connected(true, 0);
        let mut rng = SimRng::new(1);
        // 8 kbit/s: 1,000 bytes take 1 s to send.
        assert_eq!(
            l.transmit(0, 1_000, 0, true, 6, &mut rng),
            Transmit::Arrives(1_030)
        );
        assert_eq!(
            l.transmit(0, 1_000, 0, true, 6, &mut rng),
            Transmit::Arrives(2_030)
        );
        // The other direction is independent.
        assert_eq!(
            l.transmit(1, 1_000, 0, true, 6, &mut rng),
            Transmit::Arrives(1_030)
        );
    }

    #[test]
    fn a_link_that_loses_everything_dies() {
        let class = LinkClass {
            loss: 1.0,
            ..LinkClass::default()
        };
        let mut l = Link::new(0, 1, LinkKind::VillageLan, class);
        let mut rng = SimRng::new(1);
        assert!(matches!(
            l.transmit(0, 10, 0, false, 6, &mut rng),
            Transmit::ConnectionDies(_)
        ));
    }
}
