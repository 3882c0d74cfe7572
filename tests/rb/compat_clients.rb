# The Ruby docker-api gem (Debian's ruby-docker-api) against Shoal: exec start without a
# hijack (the gem's `exec` streams the output in the answer body) and request bodies whose
# keys are not in Docker's case (the gem's network connect sends `{"container": id}`).
# Usage: ruby compat_clients.rb tcp://host:port
require 'json' # the gem's error path uses JSON without requiring it
require 'docker'

Docker.url = ARGV.fetch(0)
Docker.options = { read_timeout: 60, write_timeout: 60 }

def check(what, cond, detail = nil)
  raise "#{what} failed: #{detail.inspect}" unless cond
  puts "ok: #{what}"
end

# Create with keys in lower case, as Go's encoding/json accepts them.
body = MultiJson.dump('image' => 'busybox:latest', 'cmd' => ['sleep', '300'],
                      'labels' => { 'rb' => 'compat' })
created = Docker::Util.parse_json(
  Docker.connection.post('/containers/create', { name: 'rb-box' }, body: body)
)
box = Docker::Container.get(created['Id'])
check('create with lower-case keys keeps the command',
      box.json['Config']['Cmd'] == ['sleep', '300'], box.json['Config']['Cmd'])
check('create with lower-case keys keeps the labels',
      box.json['Config']['Labels']['rb'] == 'compat', box.json['Config']['Labels'])
box.start

# Exec start without a hijack, again and again on the gem's one connection: each answer
# is the exec's whole output, and the call after it still works.
5.times do |i|
  out, err, code = box.exec(['sh', '-c', "echo out#{i}; echo err#{i} >&2"])
  check("exec #{i} streams stdout", out.join == "out#{i}\n", out)
  check("exec #{i} streams stderr", err.join == "err#{i}\n", err)
  check("exec #{i} exit code", code.zero?, code)
  check("call after exec #{i}", Docker::Container.get(box.id).json['State']['Running'])
end
# Output that takes a while: the answer lasts until the exec ends.
out, _, code = box.exec(['sh', '-c', 'for i in 1 2 3; do echo $i; sleep 0.3; done'])
check('slow exec output whole', out.join == "1\n2\n3\n" && code.zero?, out)

# Exec create with lower-case keys.
exec_body = MultiJson.dump('cmd' => ['true'], 'attachstdout' => true)
made = Docker::Util.parse_json(
  Docker.connection.post("/containers/#{box.id}/exec", {}, body: exec_body)
)
info = Docker::Util.parse_json(Docker.connection.get("/exec/#{made['Id']}/json"))
check('exec create with lower-case keys', info['ProcessConfig']['entrypoint'] == 'true', info)

# Network connect and disconnect: the gem sends `{"container": id}`.
net = Docker::Network.create('rb-net')
net.connect(box.id)
nets = Docker::Container.get(box.id).json['NetworkSettings']['Networks']
check('network connect with {"container": id}', nets.key?('rb-net'), nets.keys)
net.disconnect(box.id)
nets = Docker::Container.get(box.id).json['NetworkSettings']['Networks']
check('network disconnect with {"container": id}', !nets.key?('rb-net'), nets.keys)

# Update with lower-case keys.
Docker.connection.post("/containers/#{box.id}/update", {},
                       body: MultiJson.dump('memory' => 64 * 1024 * 1024,
                                            'memoryswap' => -1))
mem = Docker::Container.get(box.id).json['HostConfig']['Memory']
check('update with lower-case keys', mem == 64 * 1024 * 1024, mem)

box.delete(force: true)
net.remove
puts 'ruby ok'
