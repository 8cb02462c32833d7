# frozen_string_literal: true

# Port of chatwoot/chatwoot `app/channels/room_channel.rb` as of Chatwoot 4.10.0 (Rails 7.1.5), over the
# in-memory records of lib/records.rb and lib/online_status_tracker.rb. Written for this testkit from Chatwoot's
# source; the order of the steps in #subscribed is Chatwoot's and matters (see below).
#
# Behaviour of the real server that the port keeps (ActionCable itself is Debian's ruby-actioncable, 6.1.7; the
# parts involved, Connection::Subscriptions#add and Channel::Base#subscribe_to_channel / #ensure_confirmation_sent,
# are the same in Rails 7.1):
#
# * Authentication is per subscription: a wrong pubsub_token, user_id or account_id makes #subscribed raise
#   (RecordNotFound) and the client gets NO answer at all: no confirm_subscription, no reject_subscription.
# * Streams are per user token, not per account: `stream_from pubsub_token` delivers every event broadcast to the
#   user's token, whichever account it belongs to, to each RoomChannel subscription of that user (and a user
#   subscription also streams "account_<id>"). Clients must filter by account / inbox themselves.
# * Confirmation comes only after the pub/sub subscription of every stream is set up (stream_from defers it);
#   with the async adapter that is a hop through the event loop, quick but not synchronous.
# * Right after subscribing, #broadcast_presence broadcasts a `presence.update` to the user's token; with the
#   async adapter it may reach the new subscription before or after its confirmation, or not at all.
# * Pings: one global 3 s timer for all connections (ActionCable::Server::Connections::BEAT_INTERVAL), started
#   with the first connection, so a socket's first ping comes 0–3 s after its welcome, then every 3 s.
#
# A subscribe whose #subscribed raises (database or Redis hiccup, membership not there yet) — frames observed
# with packages/testkit/src/actioncable/rails-cable.test.ts against this server:
#
#   -> {"command":"subscribe","identifier":"{\"account_id\":1,\"channel\":\"RoomChannel\",...}"}
#   <- nothing at all: only the periodic {"type":"ping","message":<unix s>} keep coming. Rails logs
#      "Could not execute command from (...) [CableTestkit::DatabaseHiccup - ...]".
#   The identifier STAYS registered on the connection: Subscriptions#add stores the channel object before
#   calling #subscribed and nothing removes it when #subscribed raises.
#   -> the same subscribe again (same identifier string)
#   <- nothing: Subscriptions#add returns early for a known identifier; #subscribed is not even called.
#      This lasts for the life of the socket, while the pings keep it looking healthy.
#   -> {"command":"unsubscribe","identifier":<same>}
#   <- nothing (no frame answers an unsubscribe); the identifier is removed.
#   -> the same subscribe again
#   <- {"identifier":<same>,"type":"confirm_subscription"}: #subscribed ran again and succeeded.
#
#   When the failure comes after the streams were set up (Faults at: "presence", a Redis hiccup in
#   update_presence), the never-confirmed subscription still streams: broadcasts to the token arrive as
#   {"identifier":<same>,"message":{...}} although no confirm_subscription was ever sent.
#   A new socket starts with no subscriptions, so it also recovers.
#
#   @anycable/core 1.1 against this: subscribe, the same subscribe again after subscribeRetryInterval, then it
#   gives up (SubscriptionTimeoutError) without sending unsubscribe; a new channel with the same params sends the
#   same identifier and is ignored in turn. Our realtime hub therefore unsubscribes an unconfirmed identifier
#   before subscribing it again (packages/core/src/realtime/hub.ts, `release`).
class RoomChannel < ApplicationCable::Channel
  def subscribed
    CableTestkit::Faults.begin_subscribe
    # Chatwoot 4.10 resolves user and account first (raising when either is missing) and only then streams.
    current_user
    current_account
    ensure_stream
    update_subscription
    broadcast_presence
    CableTestkit::Faults.count('subscribed_ok')
  ensure
    Thread.current[:cable_testkit_fault] = nil
  end

  def unsubscribed
    CableTestkit::Faults.count('unsubscribed')
  end

  # Chatwoot's web client performs this every 20 s to stay "online".
  def update_presence
    update_subscription
    broadcast_presence
  end

  private

  def pubsub_token
    @pubsub_token ||= params[:pubsub_token]
  end

  def ensure_stream
    stream_from pubsub_token
    stream_from "account_#{@current_account.id}" if @current_account && @current_user.is_a?(CableTestkit::User)
  end

  def current_user
    return @current_user if @current_user

    CableTestkit::Faults.database!('User.find_by!')
    # Without user_id Chatwoot looks the token up among contact inboxes (widget visitors): none are hosted here,
    # so that lookup always fails, as find_by! on an unknown token does.
    raise CableTestkit::RecordNotFound, "Couldn't find ContactInbox" if params[:user_id].blank?

    @current_user = CableTestkit::Records.find_user_by_token!(pubsub_token, params[:user_id])
  end

  def current_account
    return if current_user.blank?

    @current_account ||= current_user.find_account(params[:account_id])
  end

  def update_subscription
    return unless @current_account

    CableTestkit::OnlineStatusTracker.update_presence(@current_account.id, 'User', @current_user.id)
  end

  def broadcast_presence
    return unless @current_account

    account_id = @current_account.id
    data = {
      account_id: account_id,
      users: CableTestkit::OnlineStatusTracker.get_available_users(account_id),
      contacts: CableTestkit::OnlineStatusTracker.get_available_contacts(account_id)
    }
    ActionCable.server.broadcast(pubsub_token, { event: 'presence.update', data: data })
  end
end
