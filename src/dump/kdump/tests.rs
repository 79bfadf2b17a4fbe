//! Synthetic kdump-compressed files (tests follow in the next commit).
