//! ocipipe: back up container images and OCI artifacts from registries into OCI image
//! layouts, and restore them into registries, byte for byte.
//!
//! Every tool is one walk (`copy`) between two ends (`store`): a registry repository
//! (`registry`) or a layout directory (`layout`). `fetch` and `push` are the stages the
//! binaries compose; `cli` holds the flag definitions shared by help, man pages and
//! completions. `interrupt` removes temp files when a run is stopped.

pub mod archive;
pub mod cli;
pub mod copy;
pub mod digest;
pub mod fetch;
pub mod interrupt;
pub mod layout;
pub mod log;
pub mod manifest;
pub mod pack;
pub mod push;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
