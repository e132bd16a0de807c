#pragma once
/// \file report.hpp
/// Results of a benchmark run: rows of per-round samples grouped in sections,
/// printed as a table (min / median / max over rounds and a ratio to our
/// side), written as JSON and drawn as an SVG plot with gnuplot.

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace atasker_bench {

/// Which direction of a figure is the good one.
enum class Better { higher, lower };

/// min / median / max over the rounds of one row.
struct Summary {
    double min = 0;
    double median = 0;
    double max = 0;
};

/// Summarises samples (one per round); all zero when there are none.
[[nodiscard]] Summary summarize(std::vector<double> samples);

/// The p-th percentile (0..100, nearest rank) of samples; 0 when empty.
[[nodiscard]] double percentile(std::vector<double> samples, double p);

/// One measured thing: a peer (or our side), one metric, one sample per round.
/// A row without samples carries a note saying why (pending, skipped).
struct Row {
    std::string group;   ///< the variant measured, e.g. "4 submitters"
    std::string peer;    ///< who was measured, e.g. "asio thread_pool"
    std::string metric;  ///< e.g. "p50"
    std::string unit;    ///< e.g. "us", "tasks/s", "B/task"
    Better better = Better::higher;
    bool ours = false;            ///< atasker-cpp's side: ratios are taken against it
    std::vector<double> samples;  ///< one per round
    std::string note;             ///< why there are no samples, or a remark
};

/// One scenario's results.
struct Section {
    std::string key;    ///< the --only name
    std::string title;
    std::vector<std::string> notes;
    std::vector<Row> rows;

    void add(Row row) { rows.push_back(std::move(row)); }
    /// A row with no figures and the reason, e.g. "atasker-cpp: process pool not built yet".
    void pending(std::string group, std::string peer, std::string note, bool ours = true);
    void note(std::string text) { notes.push_back(std::move(text)); }
    /// Adds the rows and notes of a JSON document {"rows": [{group, peer,
    /// metric, unit, better, samples, note}], "notes": [...]}, as
    /// python_peers.py prints it; a malformed document becomes a note.
    void add_json(const std::string& text);
};

/// Where and when the figures were taken.
struct MachineInfo {
    unsigned nproc = 0;
    std::string cpu_model;
    std::string kernel;
    std::string date;  ///< ISO 8601, local time
    std::string clocksource;  ///< the kernel's: tsc, kvm-clock, ...
    /// A cache line's handoff between two CPUs (cpu_handoff.hpp), in ns,
    /// before the scenarios and after them: on a VM it may change meanwhile.
    std::optional<double> handoff_ns_before;
    std::optional<double> handoff_ns_after;
    [[nodiscard]] static MachineInfo probe();
};

/// Collects sections and renders them. Not thread-safe: scenarios add their
/// rows from the main thread.
class Report {
public:
    Report(MachineInfo machine, std::string settings)
        : machine_(std::move(machine)), settings_(std::move(settings)) {}

    /// A new section, owned by the report.
    Section& section(std::string key, std::string title);

    void print_header() const;
    /// Measures the handoff again, once the scenarios ran, and prints it.
    void print_footer();
    void print_section(const Section& s) const;
    /// Writes everything as JSON; throws std::runtime_error when the file cannot be written.
    void write_json(const std::string& path) const;
    /// Draws medians with min..max bars, one panel per section and unit, by
    /// running /usr/bin/gnuplot; returns a line saying what happened.
    [[nodiscard]] std::string write_plot(const std::string& path) const;

private:
    MachineInfo machine_;
    std::string settings_;
    std::deque<Section> sections_;  // stable references for section()
};

}  // namespace atasker_bench
