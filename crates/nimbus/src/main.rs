mod client;

fn main() {}
