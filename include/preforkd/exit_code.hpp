// How a worker's exit status reads to the supervisor.
#pragma once

namespace preforkd {

enum class exit_code : int {
    ok = 0,       // finished: retired or told to stop
    failure = 1,  // something broke; respawn (with back-off if it keeps happening)
    // It cannot work in this configuration (setuid failed, the docroot is gone, the
    // application's init failed); its reason goes in its scoreboard slot (exit_reason). At
    // the first start the supervisor exits 1 with it; during a reload the reload is abandoned
    // and the old generation keeps serving; otherwise respawned with the crash back-off.
    fatal = 2,
};

}  // namespace preforkd
