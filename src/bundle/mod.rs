//! CNAB bundles: the `bundle.json` model, the images to relocate, and opening BUNDLE
//! (a JSON file, or a gzipped tar recognised by its magic bytes, never by its name).

mod error;
mod images;
mod model;
mod open;

pub use error::BundleError;
pub use images::{select_images, BundleImageRef};
pub use model::{Bundle, BundleImage};
pub use open::{
    is_stdin, open_bundle, open_bundle_once, parse_bundle_json, remove_spooled_input, without_bom, BundleFormat,
    OpenedBundle, STDIN,
};
