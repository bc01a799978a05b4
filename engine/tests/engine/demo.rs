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
    assert!(v["points"].as_u64().unwrap() > 12 * 3 * 300);
    assert_eq!(v["commits"].as_u64().unwrap(), 3);
    assert!(
        v["compression_ratio_vs_16_bytes_per_point"]
            .as_f64()
            .unwrap()
            > 2.0
    );
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
