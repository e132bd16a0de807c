#pragma once
// reversed: turns a singly linked list around in place and returns its new
// head. The lock-free stacks (the inbox, the steps left to a mutex's holder)
// hand over their nodes newest first; their takers want them oldest first.

namespace atasker::detail {

/// `link(node)` is the node's next pointer, by reference.
template <class Node, class Link>
[[nodiscard]] Node* reversed(Node* head, Link&& link) noexcept {
    Node* done = nullptr;
    while (head != nullptr) {
        Node* next = link(head);
        link(head) = done;
        done = head;
        head = next;
    }
    return done;
}

}  // namespace atasker::detail
