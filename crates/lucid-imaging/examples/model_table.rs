//! Prints the README's model table from the catalogue and `ops::describe`:
//! `cargo run -p lucid-imaging --example model_table`.

fn main() {
    println!("| Endpoint | Model | What it does in lucid |");
    println!("|---|---|---|");
    for e in lucid_core::Endpoint::ALL {
        for m in e.models() {
            println!(
                "| `{}` | `{m}` | {} |",
                e.slug(),
                lucid_imaging::ops::describe(e, m)
            );
        }
    }
}
