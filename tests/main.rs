//! End-to-end and operations tests: one test binary, a module per topic.

mod ops;
