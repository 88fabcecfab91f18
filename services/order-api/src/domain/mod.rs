//! The order's rules: its states and legal moves, and what makes a new order valid.

pub mod access;
pub mod access_token;
pub mod new_order;
pub mod status;
