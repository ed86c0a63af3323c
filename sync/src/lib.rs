//! placeholder
pub mod book;
pub mod codec;
pub mod event;
pub mod ids;
pub mod keys;
pub mod roster;
pub mod time;
