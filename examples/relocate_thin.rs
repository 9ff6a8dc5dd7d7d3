//! Relocates a thin bundle and writes its relocation mapping, printing each image's outcome:
//!
//! ```text
//! cargo run --example relocate_thin -- forge.json registry.internal.acme.com/smith relmap.json
//! ```
//!
//! Credentials come from Docker's config.json, as for the command line.

use cnab_relocate::engine::Event;
use cnab_relocate::Relocation;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bundle, prefix, mapping] = args.as_slice() else {
        return Err("usage: relocate_thin BUNDLE PREFIX MAPPING".into());
    };
    let report = Relocation::new(bundle)
        .prefix(prefix)
        .mapping_file(mapping)
        .on_event(|event| {
            if let Event::ImageCopied {
                image,
                relocated,
                digest,
                ..
            } = event
            {
                println!("copied {image} → {relocated} ({digest})");
            }
        })
        .run()
        .await?;
    println!(
        "{} image(s), {} bytes sent; mapping in {mapping}",
        report.images.len(),
        report.bytes_sent
    );
    Ok(())
}
