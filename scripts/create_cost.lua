-- The create bodies of scripts/create_cost.sh: shoal-bench's six shapes (bench/src/creates.rs),
-- unnamed, and without the host port one shape in six binds there.
local bodies = {
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["constraint:zone==z1","affinity:image==busybox"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["constraint:storage!=hdd","constraint:zone==z*"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["constraint:storage==/^ss/","constraint:zone==~z2"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["constraint:node!=sim-3","affinity:container!=sim-5-c1","constraint:kernelversion==6.*"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["constraint:zone==~nowhere","constraint:ostype==linux"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
 '{"Image":"busybox:latest","Cmd":["sleep","1000"],"Env":["whitelist:node!=sim-1|sim-2","affinity:bench!=none"],"Labels":{"bench":"create"},"HostConfig":{"Memory":16777216,"NanoCpus":10000000}}',
}
local k = 0
request = function()
  k = k + 1
  return wrk.format("POST", "/containers/create", {["Content-Type"]="application/json"}, bodies[(k % 6) + 1])
end
