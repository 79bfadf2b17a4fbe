pub mod dwarf;
pub mod symbols;
