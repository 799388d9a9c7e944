// How a worker's exit status reads to the supervisor.
#pragma once

namespace preforkd {

enum class exit_code : int {
    ok = 0,       // finished: retired or told to stop
    failure = 1,  // something broke; respawn (with back-off if it keeps happening)
    fatal = 2,    // it cannot work in this configuration (e.g. setuid failed); respawn with back-off
};

}  // namespace preforkd
