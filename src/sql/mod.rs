//! Statement handling: templates, script splitting, the sqlparser extension, id-param
//! rewriting, catalog statements and writes.

pub mod build;
pub mod info;
pub mod parse;
pub mod query;
pub mod rewrite;
pub mod split;
pub mod template;
pub mod write;
