# frozen_string_literal: true

# A real Rails ActionCable server hosting a port of Chatwoot's RoomChannel, for the realtime tests:
#   puma -b tcp://127.0.0.1:0 packages/testkit/actioncable/config.ru
# /cable is ActionCable.server itself (async pub/sub adapter, in process); /control/* is the test control API
# (lib/control.rb). Started by packages/testkit/src/actioncable/launcher.ts (startRailsCable).
$stdout.sync = true
$stderr.sync = true

require 'logger'
require 'action_cable'
require 'puma'

root = __dir__
require File.join(root, 'lib/records')
require File.join(root, 'lib/faults')
require File.join(root, 'lib/online_status_tracker')
require File.join(root, 'lib/control')
require File.join(root, 'app/channels/application_cable/connection')
require File.join(root, 'app/channels/application_cable/channel')
require File.join(root, 'app/channels/room_channel')

logger = ActiveSupport::Logger.new($stderr)
logger.level = ENV.fetch('CABLE_LOG_LEVEL', 'info')
logger.formatter = proc { |severity, time, _program, message| "#{time.strftime('%H:%M:%S.%L')} #{severity} #{message}\n" }
ActionCable.server.config.tap do |config|
  config.logger = ActiveSupport::TaggedLogging.new(logger)
  config.cable = { 'adapter' => 'async' }
  config.connection_class = -> { ApplicationCable::Connection }
  config.mount_path = '/cable'
  # Chatwoot: config/initializers/cors.rb
  config.disable_request_forgery_protection = true
  # Rails' default; Chatwoot does not change it.
  config.worker_pool_size = 4
end

# Started by the test launcher: exit with the test process, even when it is killed without cleaning up.
if ENV['CABLE_EXIT_WITH_PARENT'] == '1'
  parent = Process.ppid
  Thread.new do
    loop do
      sleep 1
      Process.exit!(0) if Process.ppid != parent
    end
  end
end

control = CableTestkit::Control.new
map('/cable') { run ActionCable.server }
map('/control') { run control }
run ->(_env) { [404, { 'Content-Type' => 'text/plain' }, ['not found']] }
