//! `tandem sentinel`: watches masters, agrees on failures, elects a leader and fails over.
//! Not built yet: the sentinel issue fills this crate in.
