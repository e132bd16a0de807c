// atasker-bench: runs the scenarios of bench/ (ours and the peers' side by
// side), prints a table, and writes JSON and an SVG plot.
#include <cstdio>
#include <exception>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/split.hpp>
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "bench.hpp"

#include "mp_tasks.hpp"

namespace po = boost::program_options;
using namespace atasker_bench;

namespace {

struct Scenario {
    const char* key;
    const char* what;
    void (*run)(const Config&, Report&);
};

constexpr Scenario scenarios[] = {
    {"tiny", "tiny-task throughput, 1 and 4 submitters", run_tiny_tasks},
    {"latency", "submit-to-start latency on an idle pool", run_start_latency},
    {"critical", "critical-task start latency on a saturated pool", run_critical_latency},
    {"roundtrip", "process round trip against a semaphore ping-pong and Python", run_process_roundtrip},
    {"throughput", "process throughput with many tasks in flight", run_process_throughput},
    {"idle", "idle CPU, memory per queued task and per waiting fiber", run_idle_and_memory},
    {"crash", "crash recovery: worker death to error, to a replacement serving", run_crash_recovery},
    {"cancel", "canceling queued tasks one by one: cost per cancel as the queue grows", run_cancel_queued},
    {"map", "bulk map over many small inputs against Python's Pool.map", run_bulk_map},
    {"large", "a 256 MiB value through a worker process, each way and both", run_large_values},
    {"remote", "the remote lane on a local Redis: round trip and throughput against a bare stream loop",
     run_remote_lane},
};

}  // namespace

int main(int argc, char** argv) {
#if ATASKER_BENCH_HAVE_MP
    // Before any thread exists: the shared stamp, then the process pool's zygote.
    (void)shared_words();
    atasker::init();
#endif
    Config cfg;
    std::string only, json_path, plot_path;
    std::size_t tasks = 0;

    std::string scenario_list;
    for (const auto& s : scenarios) scenario_list += fmt::format("  {:<11} {}\n", s.key, s.what);
    po::options_description desc(
        "atasker-bench: atasker-cpp and its peers, side by side\n\nScenarios (--only):\n" + scenario_list +
        "\nOptions");
    desc.add_options()                                                                      //
        ("help,h", "show this help")                                                        //
        ("tasks,n", po::value<std::size_t>(&tasks),
         "tiny tasks per throughput round (default 200000, 1000000 with --full); the other sizes derive from it")  //
        ("rounds,r", po::value<int>(&cfg.rounds)->default_value(5), "rounds per figure (min/median/max over them)")  //
        ("full", po::bool_switch(&cfg.full), "bigger sizes, and all rounds for the slow scenarios")               //
        ("only", po::value<std::string>(&only), "comma-separated scenarios to run (default: all)")              //
        ("json", po::value<std::string>(&json_path)->default_value("bench-results.json"), "write results as JSON here")  //
        ("plot", po::value<std::string>(&plot_path)->default_value("bench-results.svg"),
         "write an SVG plot here (needs /usr/bin/gnuplot); empty: no plot");

    // Not shown in --help: the scenarios start the runner again with these to
    // measure in a fresh process (see queued_memory_child).
    std::string memory_child;
    std::size_t memory_items = 0;
    std::vector<std::string> remote_worker;  // url, namespace, prefetch
    po::options_description hidden;
    hidden.add_options()                                                   //
        ("memory-child", po::value<std::string>(&memory_child))            //
        ("memory-items", po::value<std::size_t>(&memory_items))            //
        ("remote-worker", po::value<std::vector<std::string>>(&remote_worker)->multitoken());
    po::options_description all;
    all.add(desc).add(hidden);

    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, all), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "atasker-bench: " << e.what() << "\n\n" << desc << '\n';
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return 0;
    }
    if (!memory_child.empty()) return queued_memory_child(memory_child, memory_items);
    if (!remote_worker.empty()) return remote_worker_main(remote_worker);
    cfg.tasks = vm.count("tasks") ? tasks : (cfg.full ? 1'000'000 : 200'000);
    if (cfg.tasks < 100 || cfg.rounds < 1) {
        std::cerr << "atasker-bench: --tasks must be at least 100 and --rounds at least 1\n";
        return 2;
    }

    std::set<std::string> chosen;
    if (!only.empty()) {
        std::vector<std::string> parts;
        boost::split(parts, only, boost::is_any_of(","));
        for (const auto& p : parts) {
            if (p.empty()) continue;
            bool known = false;
            for (const auto& s : scenarios) known = known || p == s.key;
            if (!known) {
                std::cerr << "atasker-bench: unknown scenario '" << p << "' in --only; choose from:\n"
                          << scenario_list;
                return 2;
            }
            chosen.insert(p);
        }
    }

    Report report(MachineInfo::probe(),
                  fmt::format("settings: --tasks {} --rounds {}{}  (workers: {}; latency samples/round: {}; "
                              "process samples/round: {}; process tasks/round: {}; memory items: {})",
                              cfg.tasks, cfg.rounds, cfg.full ? " --full" : "", cfg.workers, cfg.latency_samples(),
                              cfg.process_samples(), cfg.process_tasks(), cfg.memory_items()));
    report.print_header();
    int failures = 0;
    for (const auto& s : scenarios) {
        if (!chosen.empty() && !chosen.count(s.key)) continue;
        try {
            s.run(cfg, report);
        } catch (const std::exception& e) {
            ++failures;
            fmt::print(stderr, "atasker-bench: scenario {} failed: {}\n", s.key, e.what());
        }
    }
    report.print_footer();
    try {
        report.write_json(json_path);
        fmt::print("\njson: wrote {}\n", json_path);
    } catch (const std::exception& e) {
        ++failures;
        fmt::print(stderr, "atasker-bench: {}\n", e.what());
    }
    fmt::print("{}\n", report.write_plot(plot_path));
    return failures ? 1 : 0;
}
