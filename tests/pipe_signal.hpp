#pragma once
// Pipes between a test and its worker processes, made in main before
// at::init() so every worker inherits them: a task tells the test something
// happened by writing a byte, the test answers by writing to another pipe.
// Blocking reads, never sleeps.

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace test_support {

class PipeSignal {
public:
    /// Creates the pipe; call before at::init().
    void open() {
        if (::pipe(fds_) != 0) throw std::runtime_error("cannot create a pipe");
    }
    void send(char c = 'x') const {
        if (::write(fds_[1], &c, 1) != 1) throw std::runtime_error("cannot write a pipe");
    }
    /// Blocks for the next byte.
    [[nodiscard]] char receive() const {
        char c = 0;
        while (::read(fds_[0], &c, 1) != 1)
            if (errno != EINTR) throw std::runtime_error("cannot read a pipe");
        return c;
    }
    /// Blocks for `n` bytes and returns them in order.
    [[nodiscard]] std::string receive(std::size_t n) const {
        std::string out;
        while (out.size() < n) out += receive();
        return out;
    }

private:
    int fds_[2] = {-1, -1};
};

}  // namespace test_support
