//! Time: an injected clock, and the deployment calendar.
//!
//! Instants are UTC [`Timestamp`]s. Calendar days (day 0 of a quarantine, "N days without a new
//! case") are taken in the deployment's IANA time zone through [`Calendar`]. Nothing in the
//! engines reads the system clock: whoever needs "now" is handed a [`Clock`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A source of "now".
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until moved: for tests and replays.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicI64,
}

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock { nanos: AtomicI64::new(at.as_nanosecond() as i64) }
    }
    pub fn set(&self, at: Timestamp) {
        self.nanos.store(at.as_nanosecond() as i64, Ordering::SeqCst);
    }
    pub fn advance(&self, by: SignedDuration) {
        self.nanos.fetch_add(by.as_nanos() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanosecond(self.nanos.load(Ordering::SeqCst) as i128).expect("in range")
    }
}

/// A clock that runs `factor` times faster than real time from a chosen start: the demo clock.
#[derive(Debug)]
pub struct AcceleratedClock {
    start_virtual: Timestamp,
    start_real: Mutex<std::time::Instant>,
    factor: f64,
}

impl AcceleratedClock {
    pub fn new(start_virtual: Timestamp, factor: f64) -> Self {
        AcceleratedClock { start_virtual, start_real: Mutex::new(std::time::Instant::now()), factor }
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> Timestamp {
        let real = self.start_real.lock().expect("clock lock").elapsed();
        let virt = SignedDuration::try_from(real.mul_f64(self.factor)).unwrap_or(SignedDuration::MAX);
        self.start_virtual.saturating_add(virt).expect("no calendar units")
    }
}

/// The deployment's calendar: which local day an instant falls on.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    tz: TimeZone,
}

impl Calendar {
    /// A calendar in the named IANA zone (e.g. `Asia/Shanghai`).
    pub fn new(zone: &str) -> Result<Self, jiff::Error> {
        Ok(Calendar { name: zone.to_string(), tz: TimeZone::get(zone)? })
    }
    pub fn utc() -> Self {
        Calendar { name: "UTC".into(), tz: TimeZone::UTC }
    }
    /// The zone's IANA name.
    pub fn zone_name(&self) -> &str {
        &self.name
    }
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
    /// The local calendar day of an instant.
    pub fn day_of(&self, t: Timestamp) -> Date {
        t.to_zoned(self.tz.clone()).date()
    }
    /// The first instant of a local day (handles days that do not start at midnight).
    pub fn start_of(&self, day: Date) -> Timestamp {
        day.to_zoned(self.tz.clone()).expect("date in range").start_of_day().expect("in range").timestamp()
    }
    /// Whole local days from `from`'s day to `to`'s day (day 0 = same local day).
    pub fn day_number(&self, from: Timestamp, to: Timestamp) -> i32 {
        let a = self.day_of(from);
        let b = self.day_of(to);
        (b - a).get_days()
    }
}

/// Parses an instant as integer Unix seconds or RFC 3339.
pub fn parse_instant(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    let bytes = s.as_bytes();
    let numeric = !bytes.is_empty()
        && bytes.iter().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-' && bytes.len() > 1));
    if numeric {
        let secs: i64 = s.parse().map_err(|_| format!("`{s}` is not a valid Unix time"))?;
        return Timestamp::from_second(secs).map_err(|e| format!("`{s}` is out of range: {e}"));
    }
    s.parse::<Timestamp>().map_err(|_| {
        format!("`{s}` is neither integer Unix seconds nor an RFC 3339 instant (e.g. 2022-03-02T08:00:00Z)")
    })
}

/// Serde for instants: reads integer Unix seconds or RFC 3339, writes RFC 3339.
pub mod ts {
    use jiff::Timestamp;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        d.deserialize_any(TsVisitor)
    }

    pub(crate) struct TsVisitor;

    impl<'de> Visitor<'de> for TsVisitor {
        type Value = Timestamp;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("integer Unix seconds or an RFC 3339 instant")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
            Timestamp::from_second(v).map_err(|e| E::custom(format!("{v} is out of range: {e}")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
            let v = i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))?;
            self.visit_i64(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                self.visit_i64(v as i64)
            } else {
                Err(E::custom(format!("{v} is not whole Unix seconds")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
            super::parse_instant(v).map_err(E::custom)
        }
    }
}

/// Serde for optional instants; an empty string or null is `None`.
pub mod opt_ts {
    use jiff::Timestamp;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(t),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Timestamp>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("empty, integer Unix seconds or an RFC 3339 instant")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(super::ts::TsVisitor).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            super::ts::TsVisitor.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            super::ts::TsVisitor.visit_u64(v).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() { Ok(None) } else { super::ts::TsVisitor.visit_str(v).map(Some) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_days_follow_the_zone() {
        let cal = Calendar::new("Asia/Shanghai").unwrap();
        // 2022-03-01T17:30Z is 01:30 on 2 March in Shanghai.
        let t: Timestamp = "2022-03-01T17:30:00Z".parse().unwrap();
        assert_eq!(cal.day_of(t), jiff::civil::date(2022, 3, 2));
        assert_eq!(Calendar::utc().day_of(t), jiff::civil::date(2022, 3, 1));
        let later: Timestamp = "2022-03-08T15:00:00Z".parse().unwrap(); // 23:00 on 8 March local
        assert_eq!(cal.day_number(t, later), 6);
        assert_eq!(cal.start_of(jiff::civil::date(2022, 3, 2)), "2022-03-01T16:00:00Z".parse().unwrap());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0: Timestamp = "2022-03-02T00:00:00Z".parse().unwrap();
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(SignedDuration::from_hours(12));
        assert_eq!(c.now(), "2022-03-02T12:00:00Z".parse().unwrap());
    }

    #[test]
    fn accelerated_clock_runs_ahead() {
        let t0: Timestamp = "2022-03-02T00:00:00Z".parse().unwrap();
        let c = AcceleratedClock::new(t0, 3600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.now() >= t0 + SignedDuration::from_secs(60));
    }

    #[test]
    fn instants_parse_both_ways() {
        assert_eq!(parse_instant("0").unwrap(), Timestamp::UNIX_EPOCH);
        assert_eq!(parse_instant("-60").unwrap().as_second(), -60);
        assert_eq!(parse_instant("1970-01-01T00:01:00+00:00").unwrap().as_second(), 60);
        assert!(parse_instant("2022-13-01T00:00:00Z").unwrap_err().contains("RFC 3339"));
        assert!(parse_instant("").is_err());
    }
}
