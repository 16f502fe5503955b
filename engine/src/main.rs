fn main() {
    std::process::exit(locald::cli::main());
}
