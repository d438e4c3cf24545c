// The translation unit that builds the tests' shared precompiled header
// (test/CMakeLists.txt); it has no code of its own.
