use nostrum_core::prelude::*;

#[consumer]
struct Bot;

fn main() {}
