# frozen_string_literal: true

# Port of chatwoot/chatwoot `app/channels/application_cable/channel.rb` (4.10.0): an empty base class. In
# particular there is no `rescue_from`, so an exception raised in `subscribed` reaches Rails'
# `Connection::Subscriptions#execute_command`, which only logs it (see the notes in room_channel.rb).
module ApplicationCable
  class Channel < ActionCable::Channel::Base
  end
end
