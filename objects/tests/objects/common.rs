use sydra_objects::{Durability, Options, Store};
use tempfile::TempDir;

pub fn store() -> (TempDir, Store) {
    store_with(Durability::None)
}

pub fn store_with(durability: Durability) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(
        dir.path().join("objects"),
        Options {
            durability,
            ..Options::default()
        },
    )
    .unwrap();
    (dir, s)
}

pub fn count(store: &Store) -> usize {
    store.all_ids().unwrap().len()
}

pub fn tmp_files(store: &Store) -> usize {
    std::fs::read_dir(store.tmp_dir()).unwrap().count()
}
