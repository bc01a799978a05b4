use sydra_engine::section::{KvSection, MemorySection, contract};

use super::common::engine;

#[test]
fn the_memory_model_passes_the_contract() {
    contract::check(&MemorySection::default()).unwrap();
}

#[test]
fn the_object_store_section_passes_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let s = e.section("documents").unwrap();
    contract::check(&s).unwrap();
    assert_eq!(s.ref_name().as_str(), "refs/sections/documents");
    // Another section is independent.
    let other = e.section("events").unwrap();
    assert!(other.list().unwrap().is_empty());
    // Short-name revisions find sections.
    assert_eq!(
        e.repo().resolve("documents").unwrap(),
        s.head().unwrap().unwrap()
    );
}

#[test]
fn concurrent_writers_to_one_section_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let s = e.section("docs").unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    s.put(&format!("t{t}/k{i}"), b"v").unwrap();
                }
            });
        }
    });
    assert_eq!(s.list().unwrap().len(), 40);
}
