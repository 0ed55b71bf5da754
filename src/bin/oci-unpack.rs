fn main() {
    std::process::exit(ocipipe::cli::main(ocipipe::cli::Tool::Unpack))
}
