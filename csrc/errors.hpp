// Exception types of the core that Python sees as their own classes (registered in
// the bindings). Pure C++: any translation unit may throw them.
#pragma once

#include <stdexcept>

namespace rnnschur {

// A non-finite input (NaN or inf) or a result that overflowed to a non-finite value.
// Registered as rnnschur.NonFiniteError, a subclass of ValueError, so that callers
// (e.g. the training loop, which turns it into TrainingDiverged) catch the type
// instead of matching message text.
class NonFiniteError : public std::domain_error {
   public:
    using std::domain_error::domain_error;
};

}  // namespace rnnschur
