//! End-to-end scenarios live in `tests/it/`; this crate has no code of its own.
