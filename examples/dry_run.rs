//! Where a bundle's images would go, without contacting any registry:
//!
//! ```text
//! cargo run --example dry_run -- testdata/conformance/duffle-relocate/bundle.json example.com/user
//! ```

use cnab_relocate::Relocation;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bundle = args
        .next()
        .unwrap_or_else(|| "testdata/conformance/duffle-relocate/bundle.json".into());
    let prefix = args.next().unwrap_or_else(|| "example.com/user".into());
    let planned = Relocation::new(bundle).prefix(prefix).plan()?;
    // a thick bundle: every image must be in the archive, complete
    planned.check_sources()?;
    for image in &planned.plan().images {
        println!("{} → {}", image.raw, image.relocated);
    }
    println!("{}", String::from_utf8(planned.mapping().to_json())?);
    Ok(())
}
