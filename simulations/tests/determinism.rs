//! The same scenario and seed give byte-identical JSON: every preset, run twice (short runs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use lawmesh_sim::run;
use lawmesh_sim::scenario::Scenario;

fn twice(name: &str, days: u32) {
    let sc = Scenario::load(name).unwrap();
    let json = || {
        let out = run(&sc, 11, Some(days), &mut |_, _| {}).unwrap();
        assert!(
            out.report.end_check.passed,
            "{name}: end check failed: {:?}; reproduce with: {}",
            out.report.end_check.failures, out.report.run.reproduce
        );
        serde_json::to_string_pretty(&out.report).unwrap()
    };
    // The two runs go side by side on two threads: same bytes whatever the scheduling.
    let (a, b) = std::thread::scope(|s| {
        let first = s.spawn(json);
        let second = json();
        (first.join().unwrap(), second)
    });
    assert!(a == b, "{name}: two runs with seed 11 differ");
}

macro_rules! presets {
    ($($test:ident: $name:literal, $days:literal;)*) => {$(
        #[test]
        fn $test() {
            twice($name, $days);
        }
    )*};
}

presets! {
    huiyang_baseline_is_deterministic: "huiyang-baseline", 3;
    huiyang_10x_is_deterministic: "huiyang-10x", 1;
    liangjing_uplink_is_deterministic: "liangjing-uplink-6h", 2;
    district_centre_offline_is_deterministic: "district-centre-offline", 3;
    typhoon_day_is_deterministic: "typhoon-day", 2;
    firm_short_staffed_is_deterministic: "firm-short-staffed", 2;
    district_duty_2_is_deterministic: "district-duty-2", 2;
    city_scale_is_deterministic: "city-scale", 1;
}
