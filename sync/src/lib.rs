//! placeholder
pub mod book;
pub mod codec;
pub mod event;
pub mod fold;
pub mod ids;
pub mod keys;
pub mod replica;
pub mod roster;
pub mod suggest;
pub mod time;
pub mod wire;
