//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the `migrations/` folders at
//! compile time, and cargo does not watch a folder no source file names.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
