use proptest::prelude::*;
use sydra_objects::ObjectId;
use sydra_refs::{RefName, ReflogEntry, Target, parse_ref_file};

/// Strings biased towards the interesting characters of ref names.
fn name_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("refs/".to_owned()),
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just(".lock".to_owned()),
        Just("@{".to_owned()),
        Just("@".to_owned()),
        "[a-z0-9]{1,4}",
        "[ ~^:?*\\[\\\\\\x00-\\x1f\\x7f]",
        "\\PC",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 32]>().prop_map(ObjectId::from_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn ref_name_never_panics(s in any::<String>()) {
        let _ = RefName::new(&s);
    }

    #[test]
    fn accepted_names_are_safe_paths(s in name_like()) {
        if let Ok(n) = RefName::new(&s) {
            prop_assert_eq!(n.as_str(), s.as_str());
            let shown = format!("{n}");
            prop_assert_eq!(RefName::new(&shown).ok(), Some(n.clone()));
            if !n.is_head() {
                prop_assert!(s.starts_with("refs/"));
                for c in n.components() {
                    prop_assert!(!c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"));
                    prop_assert!(!c.contains('\\') && !c.contains('\0'));
                }
            }
        }
    }

    #[test]
    fn ref_file_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        let _ = parse_ref_file(&bytes);
        let mut sym = b"ref: ".to_vec();
        sym.extend_from_slice(&bytes);
        let _ = parse_ref_file(&sym);
    }

    #[test]
    fn ref_files_round_trip(target in prop_oneof![
        id().prop_map(Target::Object),
        "refs/[a-z0-9é@{}._-]{1,8}(/[a-zA-Z0-9ü._-]{1,8}){0,3}"
            .prop_filter_map("valid name", |s| RefName::new(&s).ok())
            .prop_map(Target::Symbolic),
    ]) {
        let content = target.to_file_content();
        prop_assert_eq!(parse_ref_file(&content), Ok(target));
    }

    #[test]
    fn reflog_lines_round_trip(
        old in prop::option::of(id()),
        new in prop::option::of(id()),
        timestamp_ns in any::<i64>(),
        message in any::<String>(),
    ) {
        // The zero id is the "absent" marker; BLAKE3 never yields it.
        let old = old.filter(|i| i.as_bytes() != &[0; 32]);
        let new = new.filter(|i| i.as_bytes() != &[0; 32]);
        let entry = ReflogEntry { old, new, timestamp_ns, message: message.clone() };
        let line = entry.to_string();
        let parsed = ReflogEntry::parse(&line).unwrap();
        prop_assert_eq!(&parsed, &ReflogEntry { message: message.replace(['\n', '\r'], " "), ..entry });
        prop_assert_eq!(parsed.to_string(), line);
    }

    #[test]
    fn reflog_parser_never_panics(s in any::<String>()) {
        if let Ok(e) = ReflogEntry::parse(&s) {
            // Whatever parses is canonical.
            prop_assert_eq!(e.to_string(), s.strip_suffix('\n').unwrap_or(&s));
        }
    }
}
