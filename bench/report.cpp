// The table, the JSON file and the gnuplot SVG of a benchmark run.
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/src.hpp>  // header-only Boost.JSON, compiled in this file only
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "cpu_handoff.hpp"

extern char** environ;

namespace atasker_bench {

Summary summarize(std::vector<double> samples) {
    if (samples.empty()) return {};
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    const double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    return {samples.front(), median, samples.back()};
}

double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    rank = std::clamp<std::size_t>(rank, 1, samples.size());
    auto it = samples.begin() + static_cast<std::ptrdiff_t>(rank - 1);
    std::nth_element(samples.begin(), it, samples.end());
    return *it;
}

void Section::pending(std::string group, std::string peer, std::string why, bool ours) {
    Row r;
    r.group = std::move(group);
    r.peer = std::move(peer);
    r.ours = ours;
    r.note = std::move(why);
    rows.push_back(std::move(r));
}

void Section::add_json(const std::string& text) {
    namespace json = boost::json;
    try {
        const json::value doc = json::parse(text);
        const json::object& o = doc.as_object();
        if (const auto* ns = o.if_contains("notes"))
            for (const auto& n : ns->as_array()) notes.emplace_back(n.as_string().c_str());
        if (const auto* rs = o.if_contains("rows")) {
            for (const auto& jv : rs->as_array()) {
                const json::object& jr = jv.as_object();
                Row r;
                auto str = [&](const char* k) {
                    const auto* v = jr.if_contains(k);
                    return v && v->is_string() ? std::string(v->as_string().c_str()) : std::string();
                };
                r.group = str("group");
                r.peer = str("peer");
                r.metric = str("metric");
                r.unit = str("unit");
                r.note = str("note");
                r.better = str("better") == "lower" ? Better::lower : Better::higher;
                if (const auto* ss = jr.if_contains("samples"))
                    for (const auto& x : ss->as_array()) r.samples.push_back(x.to_number<double>());
                rows.push_back(std::move(r));
            }
        }
    } catch (const std::exception& e) {
        notes.push_back(fmt::format("could not read python_peers.py output: {}", e.what()));
    }
}

MachineInfo MachineInfo::probe() {
    MachineInfo m;
    m.nproc = std::thread::hardware_concurrency();
    std::ifstream cpu("/proc/cpuinfo");
    for (std::string line; std::getline(cpu, line);) {
        if (line.rfind("model name", 0) == 0) {
            auto colon = line.find(':');
            if (colon != std::string::npos) m.cpu_model = line.substr(line.find_first_not_of(' ', colon + 1));
            break;
        }
    }
    if (m.cpu_model.empty()) m.cpu_model = "unknown";
    utsname u{};
    if (uname(&u) == 0) m.kernel = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
    m.date = buf;
    std::ifstream clock("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    if (!(clock >> m.clocksource)) m.clocksource = "unknown";
    m.handoff_ns_before = cpu_handoff_ns();
    return m;
}

Section& Report::section(std::string key, std::string title) {
    Section& s = sections_.emplace_back();
    s.key = std::move(key);
    s.title = std::move(title);
    return s;
}

namespace {

std::string format_value(double v) {
    const double a = std::fabs(v);
    if (a >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
    if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
    if (a >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
    if (a >= 100) return fmt::format("{:.0f}", v);
    if (a >= 1) return fmt::format("{:.2f}", v);
    if (a == 0) return "0";
    return fmt::format("{:.3f}", v);
}

// The row of our side that `row` is compared with: same group and metric.
const Row* ours_for(const Section& s, const Row& row) {
    for (const Row& r : s.rows)
        if (r.ours && !r.samples.empty() && r.group == row.group && r.metric == row.metric) return &r;
    return nullptr;
}

// "ours / peer" as a factor, with the direction that is better spelled out.
std::string ratio_text(const Section& s, const Row& row) {
    if (row.ours || row.samples.empty()) return "";
    const Row* o = ours_for(s, row);
    if (!o) return "";
    const double peer = summarize(row.samples).median;
    const double ours = summarize(o->samples).median;
    if (peer == 0 || ours == 0) return "";
    const double ratio = ours / peer;
    const bool better = row.better == Better::higher ? ratio > 1 : ratio < 1;
    return fmt::format("{}x ({})", ratio >= 0.1 ? fmt::format("{:.2f}", ratio) : fmt::format("{:.2g}", ratio),
                       better ? "ours better" : "peer better");
}

std::string metric_label(const Row& r) {
    if (r.metric.empty()) return r.unit;
    if (r.unit.empty() || r.metric == r.unit) return r.metric;
    return fmt::format("{} [{}]", r.metric, r.unit);
}

std::string handoff_text(const std::optional<double>& ns) {
    return ns ? fmt::format("{:.0f} ns", *ns) : std::string("not measured (fewer than two CPUs, or no pinning)");
}

}  // namespace

void Report::print_header() const {
    fmt::print("atasker-bench  {}  |  {} CPUs: {}  |  {}  |  clocksource {}\n", machine_.date, machine_.nproc,
               machine_.cpu_model, machine_.kernel, machine_.clocksource);
    fmt::print("a cache line from one CPU to another: {}{}\n", handoff_text(machine_.handoff_ns_before),
               machine_.handoff_ns_before ? " (two threads pinned to the first two CPUs pass it)" : "");
    fmt::print("{}\n", settings_);
    fmt::print("each figure: min / median / max over rounds; ratio = ours median / peer median\n");
    std::fflush(stdout);
}

void Report::print_footer() {
    machine_.handoff_ns_after = cpu_handoff_ns();
    const std::string before =
        machine_.handoff_ns_before ? fmt::format(" (before: {})", handoff_text(machine_.handoff_ns_before)) : "";
    fmt::print("\na cache line from one CPU to another, after the scenarios: {}{}\n",
               handoff_text(machine_.handoff_ns_after), before);
    std::fflush(stdout);
}

void Report::print_section(const Section& s) const {
    std::size_t wg = 5, wp = 4, wm = 6;
    for (const Row& r : s.rows) {
        wg = std::max(wg, r.group.size());
        wp = std::max(wp, r.peer.size() + (r.ours ? 2 : 0));
        wm = std::max(wm, metric_label(r).size());
    }
    fmt::print("\n== {} ==\n", s.title);
    for (const auto& n : s.notes) fmt::print("   note: {}\n", n);
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>9}  {:>9}  {:>9}  {}\n", "group", wg, "peer", wp, "metric", wm, "min",
               "median", "max", "ours / peer");
    std::string last_group;
    for (const Row& r : s.rows) {
        const std::string group = r.group == last_group ? "" : r.group;
        last_group = r.group;
        const std::string peer = r.ours ? "* " + r.peer : r.peer;
        if (r.samples.empty()) {
            fmt::print("{:<{}}  {:<{}}  {:<{}}  {}\n", group, wg, peer, wp, metric_label(r), wm,
                       r.note.empty() ? std::string("(no figures)") : r.note);
            continue;
        }
        const Summary m = summarize(r.samples);
        fmt::print("{:<{}}  {:<{}}  {:<{}}  {:>9}  {:>9}  {:>9}  {}{}\n", group, wg, peer, wp, metric_label(r), wm,
                   format_value(m.min), format_value(m.median), format_value(m.max), ratio_text(s, r),
                   r.note.empty() ? "" : "  (" + r.note + ")");
    }
    std::fflush(stdout);
}

void Report::write_json(const std::string& path) const {
    namespace json = boost::json;
    json::object root;
    root["tool"] = "atasker-bench";
    root["date"] = machine_.date;
    const auto handoff = [](const std::optional<double>& ns) { return ns ? json::value(*ns) : json::value(nullptr); };
    root["machine"] = json::object{{"nproc", machine_.nproc},
                                   {"cpu_model", machine_.cpu_model},
                                   {"kernel", machine_.kernel},
                                   {"clocksource", machine_.clocksource},
                                   {"cpu_handoff_ns_before", handoff(machine_.handoff_ns_before)},
                                   {"cpu_handoff_ns_after", handoff(machine_.handoff_ns_after)}};
    root["settings"] = settings_;
    json::array sections;
    for (const Section& s : sections_) {
        json::object js;
        js["key"] = s.key;
        js["title"] = s.title;
        js["notes"] = json::value_from(s.notes);
        json::array rows;
        for (const Row& r : s.rows) {
            json::object jr;
            jr["group"] = r.group;
            jr["peer"] = r.peer;
            jr["metric"] = r.metric;
            jr["unit"] = r.unit;
            jr["better"] = r.better == Better::higher ? "higher" : "lower";
            jr["ours"] = r.ours;
            jr["samples"] = json::value_from(r.samples);
            if (!r.samples.empty()) {
                const Summary m = summarize(r.samples);
                jr["min"] = m.min;
                jr["median"] = m.median;
                jr["max"] = m.max;
                if (const Row* o = ours_for(s, r); o && !r.ours) {
                    const double peer = m.median;
                    if (peer != 0) jr["ours_over_peer"] = summarize(o->samples).median / peer;
                }
            }
            if (!r.note.empty()) jr["note"] = r.note;
            rows.push_back(std::move(jr));
        }
        js["rows"] = std::move(rows);
        sections.push_back(std::move(js));
    }
    root["sections"] = std::move(sections);
    std::ofstream out(path, std::ios::trunc);
    if (!out) throw std::runtime_error(fmt::format("cannot open {} for writing", path));
    out << json::serialize(root) << '\n';
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", path));
}

namespace {

std::string gp_quote(std::string s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

int run_gnuplot(const std::string& script_path) {
    const char* argv[] = {"/usr/bin/gnuplot", script_path.c_str(), nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string Report::write_plot(const std::string& path) const {
    if (path.empty()) return "plot: none (--plot \"\")";
    if (access("/usr/bin/gnuplot", X_OK) != 0)
        return fmt::format("plot: /usr/bin/gnuplot not found, {} not written (apt install gnuplot-nox)", path);

    struct Panel {
        std::string title;
        std::vector<const Row*> rows;
    };
    std::vector<Panel> panels;
    for (const Section& s : sections_) {
        std::map<std::string, Panel> by_unit;
        std::vector<std::string> order;
        for (const Row& r : s.rows) {
            if (r.samples.empty()) continue;
            auto [it, fresh] = by_unit.try_emplace(r.unit);
            if (fresh) {
                order.push_back(r.unit);
                it->second.title = fmt::format("{} [{}]", s.title, r.unit);
            }
            it->second.rows.push_back(&r);
        }
        for (const auto& u : order) panels.push_back(std::move(by_unit[u]));
    }
    if (panels.empty()) return "plot: nothing measured, no plot written";

    const std::string data_path = path + ".dat";
    const std::string script_path = path + ".gp";
    {
        std::ofstream data(data_path, std::ios::trunc);
        for (const Panel& p : panels) {
            int x = 0;
            for (const Row* r : p.rows) {
                const Summary m = summarize(r->samples);
                std::string label = r->peer;
                if (!r->group.empty()) label += " | " + r->group;
                if (!r->metric.empty() && r->metric != r->unit) label += " | " + r->metric;
                fmt::print(data, "{} {} {} {} {} {}\n", x++, gp_quote(label), m.median, m.min, m.max,
                           r->ours ? 1 : 3);
            }
            fmt::print(data, "\n\n");
        }
        if (!data) return fmt::format("plot: cannot write {}", data_path);
    }
    const std::size_t cols = panels.size() > 1 ? 2 : 1;
    const std::size_t rows = (panels.size() + cols - 1) / cols;
    {
        std::ofstream gp(script_path, std::ios::trunc);
        fmt::print(gp, "set terminal svg size {},{} dynamic font 'sans,9'\n", 900 * cols, 520 * rows);
        fmt::print(gp, "set output {}\n", gp_quote(path));
        fmt::print(gp, "set multiplot layout {},{} title {}\n", rows, cols,
                   gp_quote(fmt::format("atasker-bench {}  ({} CPUs: {}); bars: median, whiskers: min..max, "
                                        "dark = atasker-cpp",
                                        machine_.date, machine_.nproc, machine_.cpu_model)));
        fmt::print(gp, "set style fill solid 0.6 border -1\nset boxwidth 0.6\nset grid ytics\n");
        fmt::print(gp, "set xtics rotate by 30 right font ',8' nomirror\nset bmargin 12\nunset key\n");
        for (std::size_t i = 0; i < panels.size(); ++i) {
            const Panel& p = panels[i];
            double lo = 0, hi = 0;
            bool positive = true;
            for (const Row* r : p.rows) {
                const Summary m = summarize(r->samples);
                if (m.min <= 0) positive = false;
                lo = lo == 0 ? m.min : std::min(lo, m.min);
                hi = std::max(hi, m.max);
            }
            if (positive && lo > 0 && hi / lo > 50) fmt::print(gp, "set logscale y\n");
            else fmt::print(gp, "unset logscale y\nset yrange [0:*]\n");
            fmt::print(gp, "set title {}\n", gp_quote(p.title));
            fmt::print(gp, "set xrange [-0.7:{}]\n", static_cast<double>(p.rows.size()) - 0.3);
            fmt::print(gp,
                       "plot {0} index {1} using 1:3:6:xtic(2) with boxes lc variable, "
                       "{0} index {1} using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0\n",
                       gp_quote(data_path), i);
            fmt::print(gp, "set autoscale y\n");
        }
        fmt::print(gp, "unset multiplot\n");
        if (!gp) return fmt::format("plot: cannot write {}", script_path);
    }
    const int rc = run_gnuplot(script_path);
    if (rc != 0) return fmt::format("plot: gnuplot failed (exit {}); script kept in {}", rc, script_path);
    std::remove(data_path.c_str());
    std::remove(script_path.c_str());
    return fmt::format("plot: wrote {}", path);
}

}  // namespace atasker_bench
