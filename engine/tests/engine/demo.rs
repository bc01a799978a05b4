use std::process::Command;

#[test]
fn the_demo_runs_end_to_end_and_refuses_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let run = |d: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_sydra"))
            .args([
                "--dir",
                d.to_str().unwrap(),
                "demo",
                "--series",
                "12",
                "--hours",
                "3",
                "--writers",
                "3",
                "--json",
            ])
            .output()
            .unwrap()
    };
    let out = run(&demo_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The demo checks its own claims (every point read back, the
    // snapshot's state, aggregates, fsck) and fails otherwise; here, the
    // figures it reports are consistent.
    let points = v["points"].as_u64().unwrap();
    assert!(points > 12 * 3 * 300);
    // Two of the twelve series get a late point each.
    assert_eq!(v["query_points"].as_u64().unwrap(), points + 2);
    // maintain() compacted the two finished hours (more when writers
    // straddle an hour), and the late points replaced segments.
    assert!(v["compactions"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["segments_replaced"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["head_points_rebuilt"].as_u64().unwrap() > 0, "{v}");
    assert!(v["aggregates_checked"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["aggregate_segments_from_stats"].as_u64().unwrap() > 0,
        "{v}"
    );
    // The two hours before midnight, as hour segments or merged into one
    // day segment per series.
    let expired = v["retention_segments_expired"].as_u64().unwrap();
    assert!((12..=24).contains(&expired), "{v}");
    assert!(v["fsck_clean"].as_bool().unwrap());
    // A second run resets its own directory.
    assert!(run(&demo_dir).status.success());
    // A directory it did not create is left alone.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("precious"), b"x").unwrap();
    let out = run(&foreign);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not created by `sydra demo`"));
    assert!(foreign.join("precious").exists());
}
