// Header-only module: SwiftPM wants at least one source file in a C target.
