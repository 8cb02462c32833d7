# frozen_string_literal: true

# Port of chatwoot/chatwoot `app/channels/application_cable/connection.rb` (4.10.0): Chatwoot's connection class
# adds nothing to Rails' base class. There is no `connect` and no `identified_by`, so a WebSocket is accepted
# without any credentials, gets its welcome frame, and every subscription authenticates itself through the
# params of its identifier (RoomChannel#subscribed). Request-forgery protection is off as in Chatwoot
# (`config/initializers/cors.rb`), so clients without an Origin header (Node's `ws`) are accepted.
module ApplicationCable
  class Connection < ActionCable::Connection::Base
  end
end
