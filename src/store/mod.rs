//! The ends of a copy: where content lives. A registry repository (`registry`) and a
//! layout directory (`layout`), each as a `copy::Source` and a `copy::Sink`.

pub mod layout;
pub mod registry;
