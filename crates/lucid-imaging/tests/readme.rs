//! The README's model table is the catalogue's: every model, described as `ops::describe` says.

#[test]
fn readme_describes_every_model() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for e in lucid_core::Endpoint::ALL {
        for m in e.models() {
            let row = format!(
                "| `{}` | `{m}` | {} |",
                e.slug(),
                lucid_imaging::ops::describe(e, m)
            );
            assert!(
                readme.contains(&row),
                "README is missing or has a stale row: {row}"
            );
        }
    }
}
