// Writes the reports of a synthetic wafer into argv[1] (no PNG); the python3 cross-check reads
// them back.
#include <cstdio>

#include "synthetic.hpp"

int main(int argc, char** argv) {
    using namespace waferprov::host::report;
    if (argc != 2) {
        std::fprintf(stderr, "usage: report_sample OUT_DIR\n");
        return 2;
    }
    WaferRun run = testing::synthetic_wafer(150, 4, 2024, "LOTPY1", 11);
    WriteOptions options;
    options.png = false;
    auto w = write_wafer_reports(argv[1], run, options);
    if (!w.ok()) {
        std::fprintf(stderr, "%s\n", w.error().describe().c_str());
        return 1;
    }
    return 0;
}
